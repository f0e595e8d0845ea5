"""The storage readers and writers the other storage tests do not reach, on both backends: the
same rows in, the same answers out (their SQL is the part that differs between the dialects)."""

from datetime import datetime, timedelta

import pandas as pd
import pytest

from monitoring_pipeline.core import compute_dataset_profile
from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.baselines import (baseline_changes, insert_baseline_change, load_training_reference,
                                                   store_training_reference)
from monitoring_pipeline.storage.deliveries import delivery_status, record_delivery, recently_delivered
from monitoring_pipeline.storage.references import StoredReference
from monitoring_pipeline.storage.registry import recorded_checkpoints, record_weights_sha256, register_model
from monitoring_pipeline.storage.replay import forget_model
from monitoring_pipeline.storage.results import (drifted_inputs, metrics_for_run, previous_windows, replace_drift,
                                                 replace_metrics, summary_versions)
from monitoring_pipeline.storage.runs import delete_artifact, failed_gate_windows, register_run, save_artifact
from monitoring_pipeline.storage.traffic import append_inference, append_labels, delete_raw_logs, read_log_window

DAY = datetime(2026, 3, 2)


@pytest.fixture
def wh(warehouse_target):
    return open_warehouse(warehouse_target)


def traffic(model: str, n: int, start: datetime) -> pd.DataFrame:
    return pd.DataFrame({"ts": [start + timedelta(hours=i) for i in range(n)], "model_name": model,
                         "model_version": "v1", "request_id": [f"{model}-{i}" for i in range(n)],
                         "features": [{"x": float(i), "c": "red" if i % 2 else "blue"} for i in range(n)],
                         "prediction": [i % 2 for i in range(n)], "confidence": 0.5, "latency_ms": 2.0, "error": None})


def test_a_window_reads_the_newest_label_known_at_its_time_and_retention_deletes_old_traffic(wh):
    assert append_inference(wh, traffic("m", 6, DAY)) == 6
    append_inference(wh, traffic("m", 2, DAY - timedelta(days=3)).assign(request_id=["old-0", "old-1"]))
    append_labels(wh, pd.DataFrame({"request_id": ["m-0", "m-0", "m-1", "old-0"], "label": ["0", "1", "1", "0"],
                                    "labeled_at": [DAY, DAY + timedelta(days=2), DAY, DAY]}))
    window = read_log_window(wh, "m", DAY, DAY + timedelta(days=1))
    assert window["request_id"].tolist() == [f"m-{i}" for i in range(6)]
    assert window["x"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and window["c"].tolist()[:2] == ["blue", "red"]
    assert window["label"].fillna("none").tolist()[:3] == ["1", "1", "none"] and window["prediction"].tolist()[:2] == ["0", "1"]
    as_of = read_log_window(wh, "m", DAY, DAY + timedelta(days=1), labeled_before=DAY + timedelta(days=1))
    assert as_of["label"].tolist()[:2] == ["0", "1"]  # the correction came later
    assert delete_raw_logs(wh, DAY - timedelta(days=1)) == {"inference_log": 2, "labels": 1}
    assert len(read_log_window(wh, "m", DAY - timedelta(days=7), DAY + timedelta(days=7))) == 6


def test_forgetting_a_model_deletes_its_rows_everywhere_and_only_its(wh):
    append_inference(wh, traffic("gone", 3, DAY))
    append_inference(wh, traffic("kept", 2, DAY))
    append_labels(wh, pd.DataFrame({"request_id": ["gone-0", "kept-0"], "label": ["1", "1"], "labeled_at": DAY}))
    register_run(wh, "r", model_name="gone")
    replace_metrics(wh, {"accuracy": 0.9}, model_name="gone", model_version="v1", data_split="production",
                    window_start=DAY, window_end=DAY, estimated=False, asset_key="eval", partition_key="p",
                    run_id=None)
    deleted = forget_model(wh, "gone")
    assert deleted["labels"] == 1 and deleted["inference_log"] == 3 and deleted["runs"] == 1
    assert deleted["ml_performance_metrics"] == 1 and "schema_version" not in deleted
    assert wh.read("SELECT model_name, count(*) AS n FROM inference_log GROUP BY 1").values.tolist() == [["kept", 2]]
    assert wh.read("SELECT request_id FROM labels")["request_id"].tolist() == ["kept-0"]


def test_gates_summaries_drift_and_metrics_are_read_back(wh):
    for day, passed in (("2026-03-01", True), ("2026-03-02", False)):
        save_artifact(wh, "report", "window_gate", model_name="m", partition_key=f"{day}|m", asset_key="gate",
                      payload={"gates": {"drift.inputs": {"passed": passed}, "quality": {"passed": True}}})
    assert failed_gate_windows(wh, "m", "drift.inputs") == {"2026-03-02|m"}  # a gate name with a dot
    assert failed_gate_windows(wh, "m", "quality") == set()
    save_artifact(wh, "report", "monitoring_summary", model_name="m", partition_key="p", asset_key="summary",
                  payload={"model_version": "v2", "served_by": {"v1": 3, "v2": 9}})
    assert summary_versions(wh, "m", "p") == ("v2", {"v1": 3, "v2": 9})
    assert summary_versions(wh, "m", "q") is None
    assert delete_artifact(wh, "monitoring_summary", model_name="m", partition_key="p") == 1
    features = [{"name": n, "method": "psi", "statistic": 1.0, "p_value_adjusted": 0.001, "effect_size": e,
                 "threshold": t, "severity": "alert", "drifted": d}
                for n, e, t, d in (("a", 0.3, 0.2, True), ("b", 0.9, 0.2, True), ("c", None, 0.2, True),
                                   ("d", 0.5, 0.0, True), ("e", 5.0, 0.2, False))]
    replace_drift(wh, {"features": features}, "data", model_name="m", model_version="v1", baseline_period="ref",
                  current_period="2026-03-02", asset_key="data_drift_report", partition_key="p", run_id=None)
    # NULL effect first (nothing to rank it by), then a zero threshold (NULL ratio), then by effect / threshold
    assert [r["name"] for r in drifted_inputs(wh, "p")] == ["c", "d", "b", "a"]
    run = register_run(wh, "r")
    for i in range(8):
        replace_metrics(wh, {"latency_p95_ms": 10.0 + i, "error_rate": 0.01 * i}, model_name="m",
                        model_version=f"v{i}", data_split="production", window_start=DAY + timedelta(days=i),
                        window_end=DAY + timedelta(days=i + 1), estimated=False, asset_key="eval",
                        partition_key=f"d{i}", run_id=run)
    before = previous_windows(wh, "m", DAY + timedelta(days=8), days=3)  # windows of days 5, 6, 7
    assert before == {"version": "v7", "latency_p95_ms": 16.0, "error_rate": pytest.approx(0.06)}
    assert metrics_for_run(wh, run)["latency_p95_ms"] in {10.0 + i for i in range(8)}
    trend = wh.read("SELECT day, metric_value, measurements FROM performance_trend WHERE metric_name = 'error_rate' "
                    "ORDER BY day")
    assert len(trend) == 8 and trend["measurements"].eq(1).all() and trend["day"].iloc[0] == pd.Timestamp(DAY)


def test_deliveries_baselines_training_references_and_checkpoints(wh):
    record_delivery(wh, "a1", "slack", "failed", 3, error="timeout", dedupe_key="k")
    record_delivery(wh, "a1", "slack", "delivered", 1, dedupe_key="k")
    record_delivery(wh, "a1", "email", "failed", 2, error="refused", dedupe_key="k")
    status = delivery_status(wh).to_dict("records")
    assert [(r["channel"], r["status"], int(r["attempts"]), None if pd.isna(r["last_error"]) else r["last_error"])
            for r in status] == [
        ("email", "failed", 2, "refused"), ("slack", "delivered", 4, None)]
    assert status[1]["delivered_at"] == status[1]["last_attempt_at"]
    assert recently_delivered(wh, "k", "slack", within_hours=1.0) == "a1"
    assert recently_delivered(wh, "k", "email", within_hours=1.0) is None
    wh.write(lambda conn: [insert_baseline_change(conn, "m", version, "window", window_start=DAY, window_end=DAY,
                                                  rows=10, set_by="ana", note=None) for version in ("v1", None, "v2")])
    assert baseline_changes(wh, "m")["model_version"].fillna("none").tolist() == ["v2", "v1", "none"]  # one transaction: one set_at
    with pytest.raises(ValueError, match="set_by"):
        wh.write(lambda conn: insert_baseline_change(conn, "m", "v1", "window", window_start=None, window_end=None,
                                                     rows=None, set_by=" ", note=None))
    profile = compute_dataset_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), "tabular")
    store_training_reference(wh, "m", "v1", StoredReference(profile, None, {"accuracy": 0.8}))
    store_training_reference(wh, "m", "v1", StoredReference(profile, None, {"accuracy": 0.9}))  # replaces
    loaded = load_training_reference(wh, "m", "v1")
    assert loaded.inputs == profile and loaded.metrics == {"accuracy": 0.9} and loaded.calibration is None
    assert load_training_reference(wh, "m", "v9") is None
    register_model(wh, "m", "v1", "champion", framework="sklearn", path="/models/m/v1", metrics={})
    record_weights_sha256(wh, "m", "v1", "abc")
    with pytest.raises(ValueError, match="already records sha256 abc"):
        record_weights_sha256(wh, "m", "v1", "def")
    assert recorded_checkpoints(wh) == {"/models/m/v1": "abc"}
