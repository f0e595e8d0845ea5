"""POST /v1/inferences and /v1/labels against a real server: 202 once durable, then in the
warehouse exactly once (on both warehouse backends: ``intake``); 401 without the token; 422 naming the field."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest

from monitoring_pipeline.storage import Warehouse, open_warehouse
from monitoring_pipeline.storage.spool import Spool
from monitoring_pipeline.storage.traffic import read_log_window
from monitoring_pipeline_tests.api_server import TOKEN, api_server, call
from monitoring_pipeline_tests.dagster_processes import BIN

pytestmark = pytest.mark.integration


@pytest.fixture
def intake(tmp_path, warehouse_target):
    """A fresh migrated warehouse, its spool and the environment a server or CLI on them needs."""
    open_warehouse(warehouse_target).read("SELECT 1")
    env = {**os.environ, "MONITORING_WAREHOUSE": warehouse_target, "MONITORING_SPOOL": str(tmp_path / "spool")}
    return {"env": env, "warehouse": warehouse_target, "spool": Spool(tmp_path / "spool"), "log": tmp_path / "api.log"}


@pytest.fixture(scope="module")
def one_server(tmp_path_factory):
    """One server for the tests that only send requests it refuses: its URL and spool."""
    home = tmp_path_factory.mktemp("intake")
    Warehouse(home / "w.duckdb").read("SELECT 1")
    env = {**os.environ, "MONITORING_WAREHOUSE": str(home / "w.duckdb"), "MONITORING_SPOOL": str(home / "spool")}
    with api_server(env, log=home / "api.log") as url:
        yield url, Spool(home / "spool")


def prediction(i: int, **extra) -> dict:
    return {"model": "fraud", "version": "v2", "request_id": f"q{i}", "timestamp": "2026-01-02T09:30:00+01:00",
            "inputs": {"amount": 10.0 * i, "country": "NL"}, "prediction": "ok", "scores": {"ok": 0.9, "fraud": 0.1},
            "latency_ms": 4.5, **extra}


def rows_when_ingested(warehouse, count: int, table: str = "inference_log", deadline: float = 300):
    """The table's rows once it holds ``count`` (the server's drainer writes them); a read that
    finds the file locked by that writer waits and retries."""
    wh = open_warehouse(warehouse, read_only=True, timeout=60)
    end = time.monotonic() + deadline
    while True:
        rows = wh.read(f"SELECT * FROM {table}")
        if len(rows) >= count or time.monotonic() > end:
            return rows
        time.sleep(0.2)


def test_a_batch_is_durable_when_answered_and_reaches_the_log_once(intake):
    with api_server(intake["env"], log=intake["log"]) as url:
        status, body = call(url + "/v1/inferences", "POST",
                            {"inferences": [prediction(i) for i in range(3)] + [prediction(1, prediction="fraud")]})
        assert status == 202, body
        assert (body["accepted"], body["duplicates_in_batch"]) == (3, 1)
        # durable before the answer: still pending in the spool, or already ingested by the drainer
        pending = [p.name for p in intake["spool"].pending_files()]
        ingested = open_warehouse(intake["warehouse"], read_only=True, timeout=60).read(
            "SELECT batch_id FROM ingested_batches")["batch_id"].tolist()
        assert any(body["batch_id"] in name for name in pending) or body["batch_id"] in ingested
        status, again = call(url + "/v1/inferences", "POST", {"inferences": [prediction(2), prediction(3)]})
        assert status == 202 and again["accepted"] == 2  # q2 again: accepted, stored once
        status, labels = call(url + "/v1/labels", "POST", {"labels": [{"request_id": "q0", "label": "fraud"}]})
        assert status == 202 and labels["accepted"] == 1
        log = rows_when_ingested(intake["warehouse"], 4)
        labels = rows_when_ingested(intake["warehouse"], 1, "labels")
    assert sorted(log["request_id"]) == ["q0", "q1", "q2", "q3"]  # the first q1 of the batch, once
    first = log.set_index("request_id").loc["q1"]
    assert first["prediction"] == "ok" and first["confidence"] == 0.9 and first["model_version"] == "v2"
    assert first["ts"] == datetime(2026, 1, 2, 8, 30)  # stored in UTC
    assert json.loads(first["scores"]) == {"ok": 0.9, "fraud": 0.1}
    window = read_log_window(open_warehouse(intake["warehouse"], read_only=True), "fraud", datetime(2026, 1, 2),
                             datetime(2026, 1, 3))
    assert window["amount"].tolist() == [0.0, 10.0, 20.0, 30.0] and window["country"].eq("NL").all()
    assert window.set_index("request_id")["label"]["q0"] == "fraud" and labels["label"].tolist() == ["fraud"]
    assert intake["spool"].pending_files() == []


def test_writes_need_the_token_and_it_never_shows(intake):
    with api_server(intake["env"], log=intake["log"]) as url:
        for path, body in (("/v1/inferences", {"inferences": [prediction(1)]}),
                           ("/v1/labels", {"labels": [{"request_id": "q1", "label": 1}]})):
            missing = call(url + path, "POST", body, token=None)
            wrong = call(url + path, "POST", body, token="not-" + TOKEN)
            assert missing[0] == 401 and "missing bearer token" in missing[1]["detail"]
            assert wrong[0] == 401 and wrong[1]["detail"] == "wrong bearer token"
            assert TOKEN not in json.dumps(missing[1]) + json.dumps(wrong[1])
    assert intake["spool"].pending_files() == []
    assert TOKEN not in intake["log"].read_text()


@pytest.mark.parametrize("path, body, field, message", [
    ("/v1/inferences", {"inferences": []}, ["body", "inferences"], "at least 1 item"),
    ("/v1/inferences", {"inferences": [{"model": "fraud"}]}, ["body", "inferences", 0, "request_id"], "required"),
    ("/v1/inferences", '{"inferences": [{"model": "m", "request_id": "a", "latency_ms": NaN}]}',
     ["body", "inferences", 0, "latency_ms"], "finite number"),
    ("/v1/inferences", '{"inferences": [{"model": "m", "request_id": "a", "inputs": {"x": Infinity}}]}',
     ["body", "inferences", 0, "inputs"], "input 'x' holds inf"),
    ("/v1/inferences", {"inferences": [{"model": "m", "request_id": "a", "scores": [0.5, 1.5]}]},
     ["body", "inferences", 0, "scores"], "probabilities in [0, 1]"),
    ("/v1/inferences", {"inferences": [{"model": "m", "request_id": "a", "colour": "red"}]},
     ["body", "inferences", 0, "colour"], "Extra inputs are not permitted"),
    ("/v1/inferences", {"inferences": [{"model": "m", "request_id": str(i)} for i in range(10_001)]},
     ["body", "inferences"], "at most 10000 items"),
    ("/v1/inferences", '{"inferences": [{"model": "m", "request_id": "a"}, {"model": "m", "request_id": "\\ud800"}]}',
     ["body", "inferences", 1, "request_id"], "unicode string"),
    ("/v1/inferences", '{"inferences": [{"model": "m", "request_id": "a", "inputs": {"x": "\\ud800"}}]}',
     ["body", "inferences"], "inferences row 0: text that is not valid Unicode"),
    ("/v1/inferences", {"inferences": [{"model": "m", "request_id": "a", "ts": "0001-01-01T00:00:00+01:00"}]},
     ["body", "inferences", 0, "ts"], "must be between 1900-01-01 and 2200-01-01"),  # pandas could not window it
    ("/v1/inferences", {"inferences": [{"model": "m", "request_id": "a", "inputs": {"label": 1, "x": 2}}]},
     ["body", "inferences", 0, "inputs"], "input names ['label'] are the window's own columns"),
    ("/v1/labels", {"labels": [{"request_id": "a"}]}, ["body", "labels", 0, "label"], "required"),
    ("/v1/labels", {"labels": [{"request_id": "a", "label": 1, "labeled_at": "yesterday"}]},
     ["body", "labels", 0, "labeled_at"], "datetime"),
])
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_spooled(one_server, path, body, field, message):
    url, spool = one_server
    if isinstance(body, str):  # NaN, Infinity, a lone surrogate: Python's JSON reads them
        request = urllib.request.Request(url + path, data=body.encode(), method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=60)
        status, answer = raised.value.code, json.loads(raised.value.read())
    else:
        status, answer = call(url + path, "POST", body)
    assert status == 422, answer
    errors = [e for e in answer["detail"] if e["loc"][:len(field)] == field]
    assert errors and any(message in e["msg"] for e in errors), answer["detail"][:3]
    assert spool.pending_files() == []


def test_monitoring_pipeline_ingest_drains_the_spool_and_prints_the_counts(intake):
    spool = intake["spool"]
    spool.accept("inferences", [{"model_name": "fraud", "request_id": f"q{i}", "ts": "2026-01-02T10:00:00",
                                 "features": {"amount": i}, "prediction": "ok"} for i in range(7)])
    spool.accept("labels", [{"request_id": "q1", "label": "ok", "labeled_at": "2026-01-03T00:00:00"}])
    command = [str(BIN / "monitoring-pipeline"), "ingest"]
    out = subprocess.run(command, env=intake["env"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "batches 2, skipped 0, rejected 0, inferences_received 7, inferences_inserted 7, labels_received 1, " \
           "labels_inserted 1" in out.stdout
    again = subprocess.run(command, env=intake["env"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "batches 0," in again.stdout
    wh = open_warehouse(intake["warehouse"], read_only=True)
    assert int(wh.read("SELECT count(*) AS n FROM inference_log")["n"][0]) == 7


def test_monitoring_pipeline_ingest_on_a_missing_warehouse_is_one_line_and_status_1(tmp_path):
    env = {**os.environ, "MONITORING_WAREHOUSE": str(tmp_path / "none.duckdb"), "MONITORING_SPOOL": str(tmp_path)}
    out = subprocess.run([str(BIN / "monitoring-pipeline"), "ingest"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 1 and out.stderr.strip().endswith("no such file") and len(out.stderr.splitlines()) == 1
