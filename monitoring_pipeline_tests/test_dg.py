"""dg beside dagster: the project is a dg project whose code location is the one workspace.yaml loads,
`dg check defs` validates it, and `dg launch` of the Tier 5 gate exits as `dagster job execute` does
with the same config: 0 when the candidate passes, non-zero when the blocking check fails."""

import os
import subprocess
import time
import tomllib
import urllib.request

import pytest
import yaml

from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline_tests.dagster_home import init_dagster_home
from monitoring_pipeline_tests.dagster_processes import BIN, ROOT, default_signals, graphql, stop
from monitoring_pipeline_tests.receivers import free_port

EXAMPLE = ROOT / "configs" / "example_tiers_monitoring.yaml"

pytestmark = pytest.mark.integration


def env_for(tmp_path) -> dict:
    return {**os.environ, "DAGSTER_HOME": str(tmp_path), "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb"),
            "MONITORING_MODELS": str(tmp_path / "models")}


def cli(tmp_path, *command) -> subprocess.CompletedProcess:
    # dg finds its project from the working directory (the nearest pyproject.toml with [tool.dg]).
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, env=env_for(tmp_path),
                          capture_output=True, text=True, timeout=900)


def weak_candidate(tmp_path) -> str:
    """The example config with a candidate trained on 40 rows, compared with run 1: the gate fails."""
    config = yaml.safe_load(EXAMPLE.read_text())
    config["ops"]["tier5_report"]["config"].update(
        baseline_run_id=1, candidate={"kind": "builtin", "name": "logistic_regression", "train_rows": 40})
    path = tmp_path / "weak.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_dg_targets_the_code_location_of_workspace_yaml():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"]
    assert project["dg"]["directory_type"] == "project"
    dg_project = project["dg"]["project"]
    assert dg_project["code_location_target_module"] == workspace["module_name"] == project["dagster"]["module_name"]
    assert dg_project["code_location_name"] == workspace["location_name"] == project["dagster"]["code_location_name"]


def test_dg_check_defs_loads_the_definitions(tmp_path):
    out = cli(tmp_path, "dg", "check", "defs")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "All definitions loaded successfully." in out.stdout


def test_dg_check_defs_fails_on_a_broken_monitors_file(tmp_path):
    monitors = tmp_path / "monitors.yaml"
    monitors.write_text(yaml.safe_dump({"start_date": "not a date", "monitors": []}))
    out = subprocess.run([str(BIN / "dg"), "check", "defs"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env={**env_for(tmp_path), "MONITORING_MONITORS": str(monitors)})
    assert out.returncode == 1, out.stdout[-2000:]
    assert "Validation failed for code location monitoring_pipeline" in out.stdout
    assert "MonitorConfigError" in out.stdout


@pytest.mark.slow
def test_dg_launch_exits_as_dagster_job_execute(tmp_path):
    init_dagster_home(tmp_path)
    dagster = ["dagster", "job", "execute", "-m", "monitoring_pipeline", "-j", "tier5_monitoring_job", "-c"]
    dg = ["dg", "launch", "--job", "tier5_monitoring_job", "--config"]
    # Run 1 (the example under dagster) is the baseline both weak runs are compared with.
    passing = {name: cli(tmp_path, *command, str(EXAMPLE)) for name, command in [("dagster", dagster), ("dg", dg)]}
    failing = {name: cli(tmp_path, *command, weak_candidate(tmp_path))
               for name, command in [("dagster", dagster), ("dg", dg)]}
    for name, out in passing.items():
        assert out.returncode == 0, f"{name}: {out.stderr[-3000:]}"
    for name, out in failing.items():
        assert out.returncode != 0, f"{name} passed a failing gate: {out.stdout[-2000:]}"
        assert "tier5_report_status_is_not_fail" in out.stderr, name
    assert failing["dg"].returncode == failing["dagster"].returncode
    # Both commands ran the same job on the same warehouse: two passing runs, two regressed candidates.
    wh = Warehouse(tmp_path / "w.duckdb")
    assert wh.read("SELECT run_id FROM runs ORDER BY run_id")["run_id"].tolist() == [1, 2, 3, 4]
    verdicts = wh.read("SELECT run_id, any_value(verdict) AS v FROM model_comparisons GROUP BY 1 ORDER BY 1")
    assert verdicts.values.tolist() == [[3, "regressed"], [4, "regressed"]]
    # dagster job execute is superseded by dg launch in Dagster 1.13: only the old command warns.
    assert "SupersessionWarning" in passing["dagster"].stderr
    assert "SupersessionWarning" not in passing["dg"].stderr


@pytest.mark.slow
def test_dg_dev_serves_the_code_location_with_a_dg_launched_run(tmp_path):
    init_dagster_home(tmp_path)  # the webserver and the daemon open it at once
    launched = cli(tmp_path, "dg", "launch", "--job", "tier5_monitoring_job", "--config", str(EXAMPLE))
    assert launched.returncode == 0, launched.stderr[-3000:]
    port = free_port()
    log = (tmp_path / "dg_dev.log").open("w")
    process = subprocess.Popen([str(BIN / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT,
                               env=env_for(tmp_path), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=default_signals)
    try:
        deadline, up = time.monotonic() + 300, False
        while not up and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "dg_dev.log").read_text()[-3000:]
            try:
                up = urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5).status == 200
            except OSError:
                time.sleep(2)
        assert up, "dg dev never answered on 127.0.0.1"
        entries = graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {"
                                " ... on RepositoryLocation { repositories { name jobs { name } } } } } } } }")
        [entry] = entries["workspaceOrError"]["locationEntries"]
        [repository] = entry["locationOrLoadError"]["repositories"]
        assert (entry["name"], repository["name"]) == ("monitoring_pipeline", "__repository__")
        assert "tier5_monitoring_job" in {job["name"] for job in repository["jobs"]}
        # The run dg launch made is listed under its job, as a dagster job execute run is.
        runs = graphql(port, '{ pipelineOrError(params: {repositoryLocationName: "monitoring_pipeline", '
                             'repositoryName: "__repository__", pipelineName: "tier5_monitoring_job"}) '
                             '{ ... on Pipeline { runs { runId status } } } }')["pipelineOrError"]["runs"]
        assert [run["status"] for run in runs] == ["SUCCESS"], runs
    finally:
        stop(process)
        log.close()
