"""The retraining sensor under the real daemon: ``dagster dev`` on 127.0.0.1 with a
temporary DAGSTER_HOME sees drift in the warehouse, launches retrain_model_job, and the
run succeeds. The test stops only the processes it started."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from monitoring_pipeline.definitions import build_definitions
from monitoring_pipeline.defs.partitions import window_key
from monitoring_pipeline.defs.resources import WarehouseResource
from monitoring_pipeline.lib.monitors import load_monitors
from monitoring_pipeline.lib.settings import monitors_path
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline_tests.dagster_home import init_dagster_home
from monitoring_pipeline_tests.dagster_processes import default_signals, stop
from monitoring_pipeline_tests.receivers import free_port

DAGSTER = str(Path(sys.executable).parent / "dagster")
MODEL = "digits_classifier"
DAYS, DRIFT_DAY = 5, 3
TIMEOUT_S = 480

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def prepare(tmp_path, monkeypatch) -> None:
    """Five served days of real digits, rotated from the fourth, monitored; no sensor tick yet."""
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    defs = build_definitions(load_monitors(monitors_path()), WarehouseResource(path=str(tmp_path / "w.duckdb")))
    instance = dg.DagsterInstance.ephemeral()
    served = defs.resolve_job_def("simulate_traffic_job").execute_in_process(instance=instance, run_config={
        "ops": {"simulate_traffic": {"config": {"model": MODEL, "days": DAYS, "start_date": "2026-01-01",
                                                "drift": {"kind": "rotation", "size": 30, "day": DRIFT_DAY}}}}})
    monitoring = defs.resolve_job_def("monitoring_job")
    for day in served.output_for_node("simulate_traffic"):
        monitoring.execute_in_process(instance=instance, partition_key=window_key(day["day"], MODEL),
                                      raise_on_error=False)


def test_dagster_dev_launches_the_retraining_and_it_succeeds(tmp_path, monkeypatch):
    prepare(tmp_path, monkeypatch)
    home = tmp_path / "dagster_home"
    init_dagster_home(home)  # the webserver, the daemon and this test open it at once
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb"),
           "MONITORING_MODELS": str(tmp_path / "models")}
    log = (tmp_path / "dagster_dev.log").open("w")
    process = subprocess.Popen([DAGSTER, "dev", "-m", "monitoring_pipeline", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=default_signals)
    try:
        instance = dg.DagsterInstance.from_config(str(home))
        deadline, runs, ui = time.monotonic() + TIMEOUT_S, [], False
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
            if not ui:
                try:
                    ui = urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5).status == 200
                except OSError:
                    pass
            runs = instance.get_runs(dg.RunsFilter(job_name="retrain_model_job"))
            if runs and runs[0].status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
                break
            time.sleep(2)
        assert ui, "the webserver never answered on 127.0.0.1"
        assert len(runs) == 1, f"retraining runs: {[r.status for r in runs]}"
        run = runs[0]
        assert run.status == dg.DagsterRunStatus.SUCCESS, (tmp_path / "dagster_dev.log").read_text()[-3000:]
        assert run.tags["dagster/sensor_name"] == "retrain_on_drift_sensor"
        assert run.tags["monitoring/trigger"] == "critical_data_drift"
    finally:
        stop(process)
        log.close()
    assert process.poll() is not None
    wh = Warehouse(tmp_path / "w.duckdb")
    decisions = wh.read("SELECT decision, run_key FROM retraining_requests WHERE model_name = ?", [MODEL])
    assert decisions["decision"].tolist() == ["launched"]
    assert decisions["run_key"][0] == f"retrain|{MODEL}|critical_data_drift|2026-01-0{DRIFT_DAY + 1}"
    versions = wh.read("SELECT model_version, stage FROM model_registry WHERE model_name = ? ORDER BY 1", [MODEL])
    assert versions["model_version"].tolist() == ["v1", "v2"]  # the run trained and judged a challenger
