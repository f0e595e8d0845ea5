"""Ingestion under load: two client processes post 20,000 predictions and their labels in batches
while monitoring_job runs (the real `dagster job execute`) on the same warehouse. Afterwards every
accepted request id is in inference_log exactly once, labels too, and no batch was refused for a lock."""

import multiprocessing
import os
import subprocess
import threading
from pathlib import Path

import pytest

from monitoring_pipeline.client import MonitoringClient
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.spool import Spool
from monitoring_pipeline_tests.api_server import TOKEN, api_server
from monitoring_pipeline_tests.dagster_home import DAGSTER, init_dagster_home
from monitoring_pipeline_tests.dagster_processes import BIN

MODEL = "api_load_model"
PARTITION = "2026-01-02|breast_cancer_classifier"
PER_CLIENT, RESENT = 10_000, 500


def _client(url: str, first: int, resend_from: int, queue) -> None:
    """One serving process: PER_CLIENT predictions from id ``first`` with a label each, then RESENT
    predictions the other client sent (a retry storm: accepted, stored once)."""
    with MonitoringClient(url, TOKEN, batch_size=500) as monitor:
        for i in range(first, first + PER_CLIENT):
            monitor.log(MODEL, "v1", f"req-{i}", {"x": i % 97 / 10, "kind": "abc"[i % 3]}, i % 2,
                        scores=[0.4, 0.6], latency_ms=1.5)
            monitor.label(f"req-{i}", (i + 1) % 2)
        for i in range(resend_from, resend_from + RESENT):
            monitor.log(MODEL, "v1", f"req-{i}", {"x": 0.0, "kind": "a"}, 0)
    queue.put({"stats": monitor.stats, "batch_ids": monitor.batch_ids})


@pytest.mark.slow
@pytest.mark.integration
def test_two_clients_post_20000_predictions_and_labels_while_a_run_writes_and_none_is_lost(tmp_path):
    home = tmp_path / "home"
    init_dagster_home(home)
    env = {**os.environ, "DAGSTER_HOME": str(home), "MONITORING_WAREHOUSE": str(home / "w.duckdb"),
           "MONITORING_SPOOL": str(home / "spool"), "MONITORING_MODELS": str(home / "models"),
           "MONITORING_REPORTS": str(home / "reports"), "MONITORING_METRICS": str(home / "monitoring.prom")}
    Warehouse(home / "w.duckdb").read("SELECT 1")
    with api_server(env, log=tmp_path / "api.log") as url:
        job = subprocess.Popen([DAGSTER, "job", "execute", "-m", "monitoring_pipeline", "-j", "monitoring_job",
                                "--tags", '{"dagster/partition": "%s"}' % PARTITION], cwd=home, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines, writing = [], threading.Event()

        def read_job_output():
            for line in job.stdout:
                lines.append(line)
                if "traffic_window - STEP_START" in line:
                    writing.set()

        reader = threading.Thread(target=read_job_output, daemon=True)
        reader.start()
        writing.wait(600)
        assert job.poll() is None, "".join(lines)[-3000:]  # the run's steps write the warehouse from here on
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        clients = [context.Process(target=_client, args=(url, first, resend, queue))
                   for first, resend in ((0, PER_CLIENT), (PER_CLIENT, 0))]
        for c in clients:
            c.start()
        results = [queue.get(timeout=900) for _ in clients]
        for c in clients:
            c.join()
        run_still_writing = job.poll() is None
        job.wait(timeout=900)
        reader.join()
    output = "".join(lines)
    assert [c.exitcode for c in clients] == [0, 0]
    assert job.returncode == 0 and "RUN_SUCCESS" in output, output[-3000:]
    out = subprocess.run([str(BIN / "monitoring-pipeline"), "ingest"], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr

    # none refused for a lock (no 503, no retry), every batch accepted
    assert [r["stats"]["unavailable"] for r in results] == [0, 0]
    assert [r["stats"]["retries"] for r in results] == [0, 0]
    assert [(r["stats"]["inferences"], r["stats"]["labels"]) for r in results] == [(PER_CLIENT + RESENT, PER_CLIENT)] * 2
    wh = Warehouse(home / "w.duckdb", read_only=True)
    accepted = {b for r in results for b in r["batch_ids"]}
    batches = wh.read("SELECT batch_id, kind, rows_received, rows_inserted FROM ingested_batches")
    assert set(batches["batch_id"]) == accepted and len(batches) == len(accepted) == 2 * (21 + 20)
    assert int(batches["rows_received"].sum()) == 2 * (PER_CLIENT + RESENT + PER_CLIENT)
    assert int(batches["rows_inserted"].sum()) == 4 * PER_CLIENT
    expected = {f"req-{i}" for i in range(2 * PER_CLIENT)}
    log = wh.read("SELECT request_id, count(*) AS n FROM inference_log WHERE model_name = ? GROUP BY 1", [MODEL])
    assert set(log["request_id"]) == expected and log["n"].eq(1).all()
    labels = wh.read("SELECT request_id, count(*) AS n FROM labels GROUP BY 1")
    assert set(labels["request_id"]) == expected and labels["n"].eq(1).all()
    # the resent rows were skipped: each request keeps its first prediction
    kinds = wh.read("SELECT count(*) AS n FROM inference_log WHERE model_name = ? AND features->>'kind' = 'a' "
                    "AND features->>'x' = '0.0'", [MODEL])
    assert int(kinds["n"][0]) == sum(1 for i in range(2 * PER_CLIENT) if i % 3 == 0 and i % 97 == 0)
    spool = Spool(home / "spool")
    assert spool.pending_files() == [] and spool.rejected_files() == []
    log_text = Path(tmp_path / "api.log").read_text()
    print(f"run still writing when the clients finished: {run_still_writing}; drains postponed by a held "
          f"warehouse: {log_text.count('spool drain postponed')}; drains: {log_text.count('spool drained')}; "
          f"left for `monitoring-pipeline ingest`: {out.stdout.strip()}")
