"""monitoring_pipeline.client.MonitoringClient: batches against a real server, retries on 503 and
on connection errors, never on a 4xx."""

import http.server
import json
import math
import os
import threading
import time

import pytest

from monitoring_pipeline.client import MonitoringClient, MonitoringError
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline_tests.api_server import TOKEN, api_server
from monitoring_pipeline_tests.receivers import free_port

from .test_intake import rows_when_ingested


@pytest.fixture
def server(tmp_path):
    Warehouse(tmp_path / "w.duckdb").read("SELECT 1")
    env = {**os.environ, "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb"), "MONITORING_SPOOL": str(tmp_path / "spool")}
    with api_server(env, log=tmp_path / "api.log") as url:
        yield url, tmp_path / "w.duckdb"


@pytest.mark.integration
def test_a_serving_process_logs_in_batches_and_every_row_arrives_once(server):
    url, warehouse = server
    with MonitoringClient(url, TOKEN, batch_size=500) as monitor:
        for i in range(1234):
            monitor.log("fraud", "v1", f"r{i}", {"amount": float(i), "missing": math.nan}, i % 2,
                        scores=[0.3, 0.7], latency_ms=2.0)
        assert monitor.stats["batches"] == 2  # 1,000 sent as the buffer filled, 234 buffered
        monitor.log("fraud", "v1", "r0", {"amount": 0.0}, 0)  # a repeat: accepted, stored once
        for i in range(0, 1234, 2):
            monitor.label(f"r{i}", i % 2)
    assert monitor.stats == {"batches": 5, "inferences": 1235, "labels": 617, "duplicates_in_batch": 0,
                             "retries": 0, "unavailable": 0}
    log = rows_when_ingested(warehouse, 1234)
    assert len(log) == 1234 and log["request_id"].is_unique
    row = log.set_index("request_id").loc["r7"]
    assert json.loads(row["features"]) == {"amount": 7.0, "missing": None} and row["confidence"] == 0.7
    assert row["prediction"] == "1"
    assert len(rows_when_ingested(warehouse, 617, "labels")) == 617


@pytest.mark.integration
def test_a_refused_batch_raises_the_servers_detail_and_is_not_retried(server):
    url, _ = server
    monitor = MonitoringClient(url, "wrong-token", batch_size=10)
    monitor.log("fraud", "v1", "r1", {"amount": 1.0}, 1)
    with pytest.raises(MonitoringError, match="answered 401 to a batch of 1 rows: wrong bearer token"):
        monitor.flush()
    assert monitor.stats["retries"] == 0
    monitor.flush()  # the refused batch was dropped: nothing left to send
    good = MonitoringClient(url, TOKEN)
    good.log("fraud", "v1", "r1", {"amount": 1.0}, 1, ts=None, confidence=0.5, scores={"a": 0.2, "b": 0.8})
    with pytest.raises(MonitoringError, match=r"422 .*body.inferences.0.confidence"):
        good._buffers["inferences"][0]["confidence"] = 2  # what a client of another language might send
        good.flush()


def test_a_value_that_is_not_a_finite_number_is_refused_at_log():
    monitor = MonitoringClient("http://127.0.0.1:9", "secret-4821")
    with pytest.raises(ValueError, match="latency_ms must be a finite number"):
        monitor.log("m", "v", "r", {}, 1, latency_ms=math.inf)
    with pytest.raises(ValueError, match=r"scores\[1\] must be a finite number"):
        monitor.log("m", "v", "r", {}, 1, scores=[0.5, math.nan])
    with pytest.raises(ValueError, match="batch_size must be 1..10000"):
        MonitoringClient("http://127.0.0.1:9", batch_size=0)
    assert "secret-4821" not in repr(monitor) + str(vars(monitor).get("stats"))


class Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 (Retry-After: 0) to the first ``busy`` posts, then 202."""

    busy = 2
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        if len(type(self).seen) <= type(self).busy:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            payload = b'{"detail": "busy"}'
        else:
            self.send_response(202)
            payload = json.dumps({"batch_id": "b", "accepted": len(body["inferences"]),
                                  "duplicates_in_batch": 0}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_a_503_is_retried_with_the_same_batch_until_accepted():
    Flaky.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monitor = MonitoringClient(f"http://127.0.0.1:{httpd.server_port}", "t", backoff=0.01)
        monitor.log("m", "v", "r1", {"x": 1}, 1)
        monitor.flush()
    finally:
        httpd.shutdown()
    assert len(Flaky.seen) == 3 and Flaky.seen[0] == Flaky.seen[2]
    assert monitor.stats["unavailable"] == 2 and monitor.stats["inferences"] == 1


def test_a_server_that_cannot_be_reached_is_a_connection_error_and_the_rows_stay_buffered():
    port = free_port()  # nothing listens on it
    monitor = MonitoringClient(f"http://127.0.0.1:{port}", "t", retries=2, backoff=0.01)
    monitor.log("m", "v", "r1", {"x": 1}, 1)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="cannot be reached after 3 attempts"):
        monitor.flush()
    assert time.monotonic() > started and monitor.stats["retries"] == 2
    assert len(monitor._buffers["inferences"]) == 1  # the next flush sends it


def test_the_client_imports_only_the_standard_library():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import sys, monitoring_pipeline.client; print(sorted({m.split('.')[0] "
                          "for m in sys.modules} & {'dagster', 'duckdb', 'pandas', 'numpy', 'fastapi', 'pydantic'}))"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr + out.stdout
