"""The closed loop's runs are found where the Dagster UI looks for them.

One short story runs through the real ``dagster job execute`` CLI on a fresh DAGSTER_HOME (the
session's ``short_story``); then ``dagster-webserver -w workspace.yaml`` opens a copy of that
home and its GraphQL (what the UI's pages read) must list the day runs under their jobs, the
retrain runs under the sensor with the triggering window, and the CLI run under
``closed_loop_job``. The CLI's output is the progress a person reads: one line per day, then
the timeline, no DEBUG lines.
"""

import re
import subprocess
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml

from monitoring_pipeline.defs.origin import (LOCATION, REPOSITORY_LABEL, REPOSITORY_LABEL_TAG, SENSOR_NAME_TAG,
                                             WINDOW_TAG)
from monitoring_pipeline_tests.dagster_processes import BIN, ROOT, default_signals, graphql, stop, wait_for_location
from monitoring_pipeline_tests.receivers import free_port
from monitoring_pipeline_tests.short_story import DAYS, DRIFT_DAY, MODEL, copy_of, story_env

REPO = {"repositoryName": REPOSITORY_LABEL.split("@")[0], "repositoryLocationName": LOCATION}


def test_every_way_of_loading_the_code_names_the_location_of_the_label():
    """The label on our runs is the one Dagster computes for UI- and daemon-launched runs only if
    the location has this name however the code is loaded (workspace.yaml, dagster -m, dg)."""
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert [e["python_module"]["location_name"] for e in workspace["load_from"]] == [LOCATION]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["code_location_name"] == LOCATION
    assert pyproject["tool"]["dg"]["project"]["code_location_name"] == LOCATION


@pytest.fixture(scope="module")
def story(short_story, tmp_path_factory):
    """The CLI's output of the short story and the port of a webserver on a copy of its DAGSTER_HOME."""
    home = copy_of(short_story, tmp_path_factory.mktemp("origins") / "home")
    port = free_port()
    server = subprocess.Popen([str(BIN / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                               "-p", str(port)], cwd=ROOT, env=story_env(home), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=default_signals)
    try:
        repos = wait_for_location(server, port, "dagster-webserver")
        yield {"out": short_story["out"], "port": port, "repos": repos, "home": home}
    finally:
        stop(server)


def job_runs(port: int, job: str) -> list[dict]:
    """The runs the UI's Runs tab of ``job`` shows (pipelineOrError.runs filters on the label of the
    location the webserver loaded)."""
    data = graphql(port, """query($p: PipelineSelector!) { pipelineOrError(params: $p) {
        __typename ... on Pipeline { runs { runId status tags { key value } } } } }""",
                   {"p": {**REPO, "pipelineName": job}})["pipelineOrError"]
    assert data["__typename"] == "Pipeline", data
    return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in data["runs"]]


@pytest.mark.integration
def test_the_loaded_location_computes_our_label(story):
    assert [f"{r['name']}@{r['location']['name']}" for r in story["repos"]] == [REPOSITORY_LABEL]


@pytest.mark.integration
def test_the_story_runs_are_listed_under_their_jobs(story):
    port = story["port"]
    monitoring = job_runs(port, "monitoring_job")
    assert sorted(r["tags"]["dagster/partition"] for r in monitoring) == \
        [f"2026-01-0{i + 1}|{MODEL}" for i in range(DAYS)]
    assert len(job_runs(port, "simulate_traffic_job")) == DAYS
    closed = job_runs(port, "closed_loop_job")
    assert [r["status"] for r in closed] == ["SUCCESS"]
    # every run the story started names it (the UI calls them "Manually launched")
    started = [*monitoring, *job_runs(port, "simulate_traffic_job"), *job_runs(port, "retrain_model_job")]
    assert {r["tags"].get("monitoring/closed_loop_run") for r in started} == {closed[0]["runId"]}


@pytest.mark.integration
def test_a_run_launched_from_the_ui_keeps_dagsters_own_label(story):
    """Dagster labels a Launchpad run from its origin; our tag has that value, so the label stays one."""
    data = graphql(story["port"], """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
        __typename ... on LaunchRunSuccess { run { runId } } } }""", {"p": {
        "selector": {**REPO, "jobName": "acknowledge_alert_job"},
        "runConfigData": {"ops": {"acknowledge": {"config": {"alert_id": "none", "by": "test"}}}}}})["launchRun"]
    assert data["__typename"] == "LaunchRunSuccess", data  # queued: no daemon runs it here
    assert [r["runId"] for r in job_runs(story["port"], "acknowledge_alert_job")] == [data["run"]["runId"]]
    instance = dg.DagsterInstance.from_config(str(story["home"]))
    assert instance.get_run_tags(tag_keys=[REPOSITORY_LABEL_TAG]) == [(REPOSITORY_LABEL_TAG, {REPOSITORY_LABEL})]


@pytest.mark.integration
def test_the_retrain_runs_are_listed_under_the_sensor_with_their_window(story):
    port = story["port"]
    data = graphql(port, """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
        __typename ... on Sensor { sensorState { runs { runId tags { key value } } } } } }""",
                   {"s": {**REPO, "sensorName": "retrain_on_drift_sensor"}})["sensorOrError"]
    assert data["__typename"] == "Sensor", data
    sensor_runs = {r["runId"]: {t["key"]: t["value"] for t in r["tags"]} for r in data["sensorState"]["runs"]}
    retrains = {r["runId"]: r["tags"] for r in job_runs(port, "retrain_model_job")}
    assert retrains and set(sensor_runs) == set(retrains)  # the drift of day 3 launched at least one
    for tags in retrains.values():
        assert tags[SENSOR_NAME_TAG] == "retrain_on_drift_sensor"  # the UI's "launched by" reads this tag
        assert tags["dagster/run_key"] and tags["monitoring/trigger"]
        day = tags[WINDOW_TAG].split("|")[0]
        assert tags[WINDOW_TAG] == f"{day}|{MODEL}" and day >= f"2026-01-0{DRIFT_DAY + 1}"


@pytest.mark.integration
def test_the_timeline_is_an_asset_with_a_table_and_a_plot(story):
    data = graphql(story["port"], """{ assetOrError(assetKey: {path: ["closed_loop_timeline"]}) {
        __typename ... on Asset { assetMaterializations { runId metadataEntries { label __typename
          ... on FloatMetadataEntry { floatValue } ... on PathMetadataEntry { path } } } } } }""")["assetOrError"]
    assert data["__typename"] == "Asset", data
    events = [{e["label"]: e for e in m["metadataEntries"]} for m in data["assetMaterializations"]]
    assert len(events) == DAYS + 1  # one per day, then the whole timeline
    whole = [e for e in events if "timeline" in e]
    assert len(whole) == 1 and whole[0]["timeline"]["__typename"] == "TableMetadataEntry"
    assert Path(whole[0]["plot"]["path"]).stat().st_size > 1000
    accuracies = [e["accuracy"]["floatValue"] for e in events if "accuracy" in e]
    assert len(accuracies) == DAYS and all(0 <= a <= 1 for a in accuracies)


@pytest.mark.integration
def test_the_cli_prints_a_line_per_day_then_the_timeline_and_no_debug(story):
    out = story["out"]
    text = out.stdout + out.stderr
    assert " - DEBUG - " not in text
    days = re.findall(r"day (\d)/5 (2026-01-0\d): served by v\d", out.stderr)
    assert [d for d, _ in days] == [str(i + 1) for i in range(DAYS)]
    table = out.stdout[out.stdout.index("The closed loop"):]
    assert [line[:10] for line in table.splitlines() if line.startswith("2026-")] == [d for _, d in days]
    dagster_lines = [line for line in text.splitlines() if " - dagster - " in line]
    assert dagster_lines and all(" - closed_loop_job - " in line for line in dagster_lines)  # the day runs are quiet
