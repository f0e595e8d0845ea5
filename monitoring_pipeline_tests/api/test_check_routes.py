"""POST /monitoring/drift/check on a real ``monitoring-pipeline serve`` against a real ``dagster dev``
on a copy of the short story's DAGSTER_HOME: the run it launches is the instance's, ran the
window's steps and wrote the window's drift rows; a second launch of the same partition while the
first is queued or running is 409; no token is 401; a webserver that does not answer is 503."""

import subprocess
import time

import pytest

from monitoring_pipeline.lib.dagster_names import LOCATION, REPOSITORY_NAME
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline_tests.api.test_service_routes import only_the_story_model
from monitoring_pipeline_tests.api_server import api_server, call
from monitoring_pipeline_tests.dagster_processes import BIN, ROOT, default_signals, graphql, stop, wait_for_location
from monitoring_pipeline_tests.receivers import free_port
from monitoring_pipeline_tests.short_story import DRIFT_DAY, MODEL, copy_of, story_env

DAY = f"2026-01-0{DRIFT_DAY + 1}"  # the story's first drifted day: its drift gate fails by design
GATE_STEP = "window_gate_"  # the blocking checks of the window (a failed gate fails the run, by design)
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


@pytest.fixture(scope="module")
def instance(short_story, tmp_path_factory):
    """``dagster dev`` on a copy of the story's home, and the environment of an API server beside it."""
    tmp = tmp_path_factory.mktemp("drift_check")
    home = copy_of(short_story, tmp / "home")
    env = {**story_env(home), "MONITORING_SPOOL": str(home / "spool"),
           "MONITORING_MONITORS": str(only_the_story_model(tmp / "monitors.yaml"))}
    port, log = free_port(), home / "dagster_dev.log"
    with log.open("w") as sink:
        process = subprocess.Popen([str(BIN / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                                    "-p", str(port)], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=default_signals)
    try:
        wait_for_location(process, port, f"dagster dev: see {log}")
        yield {"port": port, "env": {**env, "MONITORING_DAGSTER_URL": f"http://127.0.0.1:{port}"}, "tmp": tmp}
    finally:
        stop(process)


def run_of(port: int, run_id: str) -> dict:
    return graphql(port, """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
        runId jobName status tags { key value } stepStats { stepKey status } } } }""", {"id": run_id})["runOrError"]


@pytest.mark.slow
@pytest.mark.integration
def test_a_check_launches_monitoring_job_for_the_window(instance, tmp_path):
    port, partition = instance["port"], f"{DAY}|{MODEL}"
    with api_server(instance["env"], log=tmp_path / "api.log") as url:
        status, launched = call(url + "/monitoring/drift/check", "POST", {"model": MODEL, "window": DAY})
        assert status == 202, launched
        again, refused = call(url + "/monitoring/drift/check", "POST", {"model": MODEL, "window": DAY})
        run = run_of(port, launched["run_id"])
        assert run["__typename"] == "Run" and run["jobName"] == "monitoring_job"
        assert again == 409, (refused, run["status"])
        assert launched["run_id"] in refused["detail"] and partition in refused["detail"]
        assert launched["partition"] == partition
        while run["status"] not in FINISHED:  # the runner's timeout bounds the wait
            time.sleep(1)
            run = run_of(port, launched["run_id"])
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/partition"] == partition
    assert tags["monitoring/owners"] == "team:ml-platform" and tags["dataset"] == "uci-digits"
    steps = {s["stepKey"]: s["status"] for s in run["stepStats"]}
    failed = sorted(k for k, v in steps.items() if v == "FAILURE")
    assert run["status"] == "SUCCESS" or (run["status"] == "FAILURE" and failed
                                          and all(k.startswith(GATE_STEP) for k in failed)), (run["status"], failed)
    for step in ("traffic_window", "current_profile.window_shards", "current_profile.merged_profile",
                 "data_drift_report", "prediction_drift_report",
                 "monitoring_summary", "monitoring_alerts"):
        assert steps.get(step) == "SUCCESS", (step, steps)
    # listed under monitoring_job where the UI looks (the job's runs, filtered on the repository label)
    listed = graphql(port, """query($p: PipelineSelector!) { pipelineOrError(params: $p) {
        ... on Pipeline { runs { runId } } } }""", {"p": {"repositoryName": REPOSITORY_NAME,
                                                          "repositoryLocationName": LOCATION,
                                                          "pipelineName": "monitoring_job"}})["pipelineOrError"]
    assert launched["run_id"] in {r["runId"] for r in listed["runs"]}
    rows = Warehouse(instance["env"]["MONITORING_WAREHOUSE"], read_only=True).read(
        """SELECT d.drift_type, count(*) AS n FROM ml_drift_history d JOIN runs r USING (run_id)
           WHERE d.partition_key = ? AND r.dagster_run_id = ? GROUP BY ALL""", [partition, launched["run_id"]])
    assert {"data", "prediction"} <= set(rows["drift_type"]) and (rows["n"] > 0).all(), rows


@pytest.mark.slow
@pytest.mark.integration
def test_a_check_names_the_problem_with_its_request(instance, tmp_path):
    before = launched_runs(instance["port"])
    with api_server(instance["env"], log=tmp_path / "api.log") as url:
        check = url + "/monitoring/drift/check"
        status, body = call(check, "POST", {"model": MODEL, "window": DAY}, token=None)
        assert status == 401, body
        assert call(check, "POST", {"model": MODEL, "window": DAY}, token="wrong")[0] == 401
        status, body = call(check, "POST", {"model": "no_such_model", "window": DAY})
        assert status == 404 and body["detail"] == f"no monitored model named 'no_such_model'; known: {MODEL}"
        for window in ("2026-02-30", "20260103", "2026-01-03T00:00"):
            status, body = call(check, "POST", {"model": MODEL, "window": window})
            assert status == 422 and body["detail"][0]["loc"] == ["body", "window"], (window, body)
    assert launched_runs(instance["port"]) == before


def launched_runs(port: int) -> int:
    """The instance's monitoring_job runs of the window (the daemon's sensors may start other runs)."""
    return graphql(port, """query($f: RunsFilter!) { runsOrError(filter: $f) { ... on Runs { count } } }""",
                   {"f": {"pipelineName": "monitoring_job", "tags": [{"key": "dagster/partition",
                                                                      "value": f"{DAY}|{MODEL}"}]}})[
        "runsOrError"]["count"]


@pytest.mark.integration
def test_a_check_without_a_webserver_is_503(tmp_path):
    monitors = only_the_story_model(tmp_path / "monitors.yaml")
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {**story_env(tmp_path), "MONITORING_SPOOL": str(tmp_path / "spool"), "MONITORING_MONITORS": str(monitors),
           "MONITORING_DAGSTER_URL": down}
    with api_server(env, log=tmp_path / "api.log") as url:
        status, body = call(url + "/monitoring/drift/check", "POST", {"model": MODEL, "window": DAY})
    assert status == 503, body
    assert body["detail"].startswith(f"the Dagster webserver at {down} does not answer (Connection refused): start "
                                     "`dagster dev`"), body
