"""The intake spool: a batch is durable when accepted and reaches the warehouse exactly once."""

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.spool import Spool, drain, read_batch
from monitoring_pipeline.storage.traffic import read_log_window


def inference(i: int, model: str = "m", **extra) -> dict:
    return {"model_name": model, "model_version": "v1", "request_id": f"r{i}", "ts": f"2026-01-02T10:{i % 60:02d}:00",
            "features": {"x": float(i), "colour": "red"}, "prediction": "1", "confidence": 0.75,
            "scores": {"0": 0.25, "1": 0.75}, "latency_ms": 3.5, "error": None, **extra}


def label(i: int, value: str = "1", at: str = "2026-01-03T00:00:00") -> dict:
    return {"request_id": f"r{i}", "label": value, "labeled_at": at}


def logged(wh) -> list[tuple]:
    return [tuple(r) for r in wh.read("SELECT model_name, request_id FROM inference_log ORDER BY 1, 2").values]


def test_an_accepted_batch_is_a_whole_file_in_pending_before_accept_returns(tmp_path):
    spool = Spool(tmp_path / "spool")
    batch_id = spool.accept("inferences", [inference(1), inference(2)])
    files = spool.pending_files()
    assert len(files) == 1 and batch_id in files[0].name
    assert list((tmp_path / "spool" / "tmp").iterdir()) == []  # written under a temporary name, then renamed
    header, rows = read_batch(files[0])
    assert header["batch_id"] == batch_id and header["rows"] == 2 and [r["request_id"] for r in rows] == ["r1", "r2"]


def test_drain_ingests_each_batch_once_and_a_second_drain_does_nothing(tmp_path, warehouse_target):
    spool, wh = Spool(tmp_path / "spool"), open_warehouse(warehouse_target)
    first = spool.accept("inferences", [inference(i) for i in range(5)])
    spool.accept("labels", [label(i) for i in range(3)])
    counts = drain(wh, spool).as_dict()
    assert counts == {"batches": 2, "skipped": 0, "rejected": 0, "inferences_received": 5, "inferences_inserted": 5,
                      "labels_received": 3, "labels_inserted": 3}
    assert spool.pending_files() == []
    assert drain(wh, spool).as_dict()["batches"] == 0
    assert len(logged(wh)) == 5 and int(wh.read("SELECT count(*) AS n FROM labels")["n"][0]) == 3
    batches = wh.read("SELECT batch_id, kind, rows_received, rows_inserted FROM ingested_batches ORDER BY kind")
    assert batches.values.tolist()[0] == [first, "inferences", 5, 5]
    # the window reads the features, the confidence and the label; the scores are kept as JSON
    from datetime import datetime
    window = read_log_window(wh, "m", datetime(2026, 1, 2), datetime(2026, 1, 3))
    assert window["x"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and window["colour"].eq("red").all()
    assert window["label"].fillna("none").tolist() == ["1", "1", "1", "none", "none"] and window["confidence"].eq(0.75).all()
    scores = wh.read("SELECT scores FROM inference_log WHERE request_id = 'r0'")["scores"][0]
    assert json.loads(scores) == {"0": 0.25, "1": 0.75}


def test_a_crash_between_commit_and_removal_does_not_duplicate(tmp_path, warehouse_target, monkeypatch):
    spool, wh = Spool(tmp_path / "spool"), open_warehouse(warehouse_target)
    spool.accept("inferences", [inference(i) for i in range(4)])

    def crash(self, missing_ok=False):
        raise OSError("simulated crash after the commit")

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(OSError, match="simulated crash"):
        drain(wh, spool)
    monkeypatch.undo()
    assert len(spool.pending_files()) == 1 and len(logged(wh)) == 4  # committed, file still there
    counts = drain(wh, spool)
    assert (counts.batches, counts.skipped) == (0, 1) and spool.pending_files() == []
    assert len(logged(wh)) == 4


def test_the_same_request_in_two_batches_is_one_row_and_a_new_label_is_a_correction(tmp_path, warehouse_target):
    spool, wh = Spool(tmp_path / "spool"), open_warehouse(warehouse_target)
    spool.accept("inferences", [inference(1), inference(2)])
    spool.accept("inferences", [inference(2), inference(3), inference(1, model="other")])  # a client's retry
    spool.accept("labels", [label(1, "0", "2026-01-03T00:00:00")])
    spool.accept("labels", [label(1, "0", "2026-01-04T00:00:00")])  # the same label again: kept once
    spool.accept("labels", [label(1, "1", "2026-01-05T00:00:00")])  # a correction: kept beside it
    counts = drain(wh, spool)
    assert counts.inserted == {"inferences": 4, "labels": 2} and counts.received == {"inferences": 5, "labels": 3}
    assert logged(wh) == [("m", "r1"), ("m", "r2"), ("m", "r3"), ("other", "r1")]
    labels = wh.read("SELECT label, labeled_at FROM labels ORDER BY labeled_at")
    assert labels["label"].tolist() == ["0", "1"]
    from datetime import datetime
    window = read_log_window(wh, "m", datetime(2026, 1, 2), datetime(2026, 1, 3))
    assert window.set_index("request_id")["label"]["r1"] == "1"  # the newest label wins
    spool.accept("labels", [label(1, "0", "2026-01-06T00:00:00")])  # corrected back: A, B, then A again
    spool.accept("labels", [label(1, "0", "2026-01-07T00:00:00")])  # a resend of the current label
    assert drain(wh, spool).inserted == {"inferences": 0, "labels": 1}
    window = read_log_window(wh, "m", datetime(2026, 1, 2), datetime(2026, 1, 3))
    assert window.set_index("request_id")["label"]["r1"] == "0"


@pytest.mark.parametrize("damage, reason", [
    (lambda text: text[:-20], "cut off"),  # a truncated last line
    (lambda text: text.replace('"r1"', '"r1', 1), "not JSON"),
    (lambda text: "\n".join(text.splitlines()[:-1]) + "\n", "the header says 3 rows, the file holds 2"),
    (lambda text: text.replace('"2026-01-02T10:01:00"', '"yesterday"'), "cannot be stored"),
    (lambda text: text.replace('"r1"', '"r1\\ud800"'), "cannot be stored"),  # neither engine takes a lone surrogate
])
def test_a_damaged_file_is_rejected_with_its_reason_and_the_others_are_ingested(tmp_path, warehouse_target, damage, reason):
    spool, wh = Spool(tmp_path / "spool"), open_warehouse(warehouse_target)
    spool.accept("inferences", [inference(10)])
    bad = spool.accept("inferences", [inference(i) for i in range(3)])
    spool.accept("inferences", [inference(20)])
    path = next(p for p in spool.pending_files() if bad in p.name)
    path.write_text(damage(path.read_text()))
    counts = drain(wh, spool)
    assert (counts.batches, counts.rejected) == (2, 1)
    assert logged(wh) == [("m", "r10"), ("m", "r20")]
    assert [p.name for p in spool.rejected_files()] == [path.name]
    assert reason in (spool.rejected / (path.name + ".reason")).read_text()
    assert spool.pending_files() == []


@pytest.mark.parametrize("rows, message", [
    ([], "an empty inferences batch"),
    ([{k: v for k, v in inference(1).items() if k != "request_id"}], "inferences row 0: missing request_id"),
    ([inference(1), inference(2, latency_ms=float("nan"))], "inferences row 1: latency_ms must be a finite number"),
    ([inference(1, confidence=float("inf"))], "inferences row 0: confidence must be a finite number"),
    ([inference(1, features=[1, 2])], "features must be an object"),
    ([inference(1), inference(2, request_id="r\ud800")], "inferences row 1: text that is not valid Unicode"),
])
def test_a_bad_batch_is_refused_with_a_clear_error_and_nothing_is_written(tmp_path, rows, message):
    spool = Spool(tmp_path / "spool")
    with pytest.raises(ValueError, match=message):
        spool.accept("inferences", rows)
    assert spool.pending_files() == []


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown batch kind 'predictions'"):
        Spool(tmp_path).accept("predictions", [inference(1)])


def _drain_in_process(warehouse: str, spool: str, queue) -> None:
    queue.put(drain(open_warehouse(warehouse), spool).as_dict())


def _accept_many(spool: Spool, batches: int, per_batch: int) -> None:
    for b in range(batches):  # overlapping request ids across batches: each is still logged once
        spool.accept("inferences", [inference(b * per_batch + i) for i in range(per_batch + 5)])


def test_two_drainer_processes_at_once_ingest_every_batch_exactly_once(tmp_path, warehouse_target):
    spool, wh = Spool(tmp_path / "spool"), open_warehouse(warehouse_target)
    with wh.connect():  # created and migrated before the two processes open it
        pass
    _accept_many(spool, 30, 20)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_drain_in_process, args=(warehouse_target, str(spool.root), queue))
                 for _ in range(2)]
    for p in processes:
        p.start()
    results = [queue.get(timeout=600) for _ in processes]
    for p in processes:
        p.join()
    assert [p.exitcode for p in processes] == [0, 0]
    assert sum(r["batches"] for r in results) == 30 and sum(r["skipped"] for r in results) == 0
    assert sum(r["inferences_inserted"] for r in results) == 29 * 20 + 25
    ids = wh.read("SELECT request_id, count(*) AS n FROM inference_log GROUP BY 1")
    assert len(ids) == 29 * 20 + 25 and ids["n"].eq(1).all()
    assert int(wh.read("SELECT count(*) AS n FROM ingested_batches")["n"][0]) == 30


def test_two_drainer_threads_at_once_ingest_every_batch_exactly_once(tmp_path, warehouse_target):
    # DuckDB's in-process MVCC would let two threads' transactions both insert the same new
    # rows; the flock on drain.lock makes them take turns
    spool, wh = Spool(tmp_path / "spool"), open_warehouse(warehouse_target)
    _accept_many(spool, 20, 20)
    results, errors = [], []

    def drainer():
        try:
            results.append(drain(wh, spool).as_dict())
        except Exception as error:  # recorded: the test fails on it below
            errors.append(error)

    threads = [threading.Thread(target=drainer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 3
    assert sum(r["batches"] for r in results) == 20
    ids = wh.read("SELECT request_id, count(*) AS n FROM inference_log GROUP BY 1")
    assert len(ids) == 19 * 20 + 25 and ids["n"].eq(1).all()


def test_drain_of_a_missing_spool_does_nothing(tmp_path, warehouse_target):
    counts = drain(open_warehouse(warehouse_target), tmp_path / "no-spool")
    assert counts.as_dict()["batches"] == 0 and not (tmp_path / "no-spool").exists()
