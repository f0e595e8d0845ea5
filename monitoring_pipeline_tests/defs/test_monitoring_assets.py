import os
from pathlib import Path

import dagster as dg
import pandas as pd

from monitoring_pipeline.storage.runs import failed_gate_windows
from monitoring_pipeline.storage.traffic import append_inference, append_labels

from .conftest import (
    DAY,
    MODEL,
    bundled_monitor,
    config_of,
    count,
    file_monitor,
    run_window,
    traffic_file,
)

WINDOW = f"{DAY}|{MODEL}"
TABLES = ["artifacts", "ml_drift_history", "ml_performance_metrics", "ml_monitoring_alerts", "model_comparisons"]


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_window_of_the_embedded_default_runs_end_to_end(warehouse):
    result = run_window(config_of(bundled_monitor()), warehouse)
    assert result.success
    assert materialized(result) >= {"traffic_window", "current_profile", "data_drift_report",
                                    "prediction_drift_report", "concept_drift_report", "eval_metrics",
                                    "baseline_comparison", "monitoring_summary", "monitoring_alerts",
                                    "reference_profile"}  # the first window stores the reference
    assert all(e.passed for e in checks(result).values()), checks(result)
    summary = result.output_for_node("monitoring_summary")
    assert summary["status"] == "ok" and "no severe drift detected" in summary["summary"]
    wh = warehouse.get()
    assert count(wh, "ml_drift_history", "drift_type = 'data'") == 30
    assert count(wh, "ml_drift_history", "drift_type = 'prediction'") == 2
    assert count(wh, "ml_drift_history", "drift_type = 'concept'") == 32  # 30 features and the 2 signals
    names = set(wh.read("SELECT name FROM artifacts")["name"])
    assert names == {"reference_inputs", "reference_outputs", "reference_calibration", "current_inputs",
                     "current_outputs", "monitoring_summary", "window_gate", "window_approval"}
    assert {"window_gate", "approved_window"} <= materialized(result)  # every gate passed: released
    accuracy = wh.read("""SELECT metric_value FROM ml_performance_metrics WHERE metric_name = 'accuracy'
                          AND data_split = 'production' AND NOT estimated""")["metric_value"]
    assert len(accuracy) == 1 and 0.8 < accuracy[0] <= 1.0
    # labels were in: the one accuracy row is realized, and the window's estimate is kept beside it
    assert count(wh, "ml_performance_metrics", "data_split = 'production' AND estimated") == 0
    kept = wh.read("SELECT estimate, ci_low, ci_high, realized, reliable FROM performance_estimates "
                   "WHERE metric_name = 'accuracy'")
    assert len(kept) == 1 and kept["realized"][0] == accuracy[0] and kept["ci_low"][0] <= kept["estimate"][0]
    assert abs(kept["estimate"][0] - accuracy[0]) < 0.1
    assert count(wh, "model_comparisons", "candidate_version = 'random_forest'") >= 5
    report = result.output_for_node("data_drift_report")
    plot = result.asset_materializations_for_node("data_drift_report")[0].metadata["plot"].value
    assert report["n_features"] == 30 and plot.startswith("![") and "data:image/png;base64," in plot
    alerts_meta = result.asset_materializations_for_node("monitoring_alerts")[0].metadata
    assert alerts_meta["diagnosis"].value == "none"  # a healthy window is diagnosed as such
    assert alerts_meta["hypothesis"].value.startswith("Nothing abnormal")
    report = Path(alerts_meta["report"].value)  # the run's self-contained HTML report
    assert report == Path(os.environ["MONITORING_REPORTS"]) / MODEL / f"{DAY}_{MODEL}.html"
    assert summary["summary"] in report.read_text() and "data:image/png;base64," in report.read_text()
    prom = Path(os.environ["MONITORING_METRICS"]).read_text()
    assert f'ml_monitoring_accuracy{{model="{MODEL}",version="logistic_regression"}}' in prom


def test_rerunning_a_window_replaces_its_rows(warehouse):
    config = config_of(bundled_monitor())
    assert run_window(config, warehouse).success
    before = {t: count(warehouse.get(), t) for t in TABLES}
    assert run_window(config, warehouse).success
    assert {t: count(warehouse.get(), t) for t in TABLES} == before


def test_the_reference_is_stored_once_and_reused(warehouse):
    config = config_of(bundled_monitor())
    run_window(config, warehouse)
    first = warehouse.get().read("SELECT artifact_id, created_at FROM artifacts WHERE name = 'reference_inputs'")
    second_run = run_window(config, warehouse, day="2026-01-06")
    assert "reference_profile" not in materialized(second_run)
    again = warehouse.get().read("SELECT artifact_id, created_at FROM artifacts WHERE name = 'reference_inputs'")
    assert again.equals(first)


RECORD = {"traffic_window", "current_profile", "data_drift_report", "prediction_drift_report", "eval_metrics",
          "baseline_comparison", "concept_drift_report", "monitoring_summary", "monitoring_alerts", "window_gate"}


def gate_failed(result, name: str) -> dg.AssetCheckEvaluation:
    """The run failed at the named blocking gate, after the window's whole record was stored,
    and the window was not released."""
    assert not result.success
    gate = checks(result)[name]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    assert materialized(result) >= RECORD and "approved_window" not in materialized(result)
    return gate


def test_a_failed_quality_check_fails_the_gate_and_keeps_the_record(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", drop=["mean radius"], scale="mean area")
    result = run_window(config_of(file_monitor(path)), warehouse)
    gate = gate_failed(result, "data_quality_passed")
    assert "mean radius" in gate.metadata["features"].value and "mean area" in gate.metadata["features"].value
    summary = result.output_for_node("monitoring_summary")
    assert summary["status"] == "fail" and summary["reasons"][0].startswith("data quality failed")
    alerts = warehouse.get().read("SELECT * FROM ml_monitoring_alerts WHERE alert_type = 'DATA_QUALITY_ISSUE'")
    assert list(alerts["severity"]) == ["critical"] and "mean radius" in alerts["affected_features"][0]
    assert count(warehouse.get(), "ml_drift_history", "drift_type = 'data'") > 0  # drift is still judged
    # The stored verdict keeps the window out of any retraining's training data and holdout.
    assert failed_gate_windows(warehouse.get(), MODEL, "data_quality_passed") == {WINDOW}
    assert failed_gate_windows(warehouse.get(), MODEL, "no_drift_alert") == set()


def test_an_empty_window_fails_its_quality_gate_and_is_recorded(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", day=DAY.replace(day=9))
    result = run_window(config_of(file_monitor(path)), warehouse)  # traffic exists, but not on DAY
    gate = gate_failed(result, "data_quality_passed")
    assert "no rows" in gate.metadata["message"].value
    assert result.output_for_node("data_drift_report")["skipped"] == "the window has no traffic to profile"
    summary = result.output_for_node("monitoring_summary")
    assert summary["status"] == "fail" and "no rows" in summary["reasons"][0]


def test_a_drift_alert_fails_the_gate_and_the_whole_day_is_recorded(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", shift={"mean radius": 1.4, "mean perimeter": 1.4, "mean area": 1.8})
    result = run_window(config_of(file_monitor(path)), warehouse)
    gate = gate_failed(result, "no_drift_alert")
    report = result.output_for_node("data_drift_report")
    drifted = {r["name"] for r in report["features"] if r["drifted"]}
    assert {"mean radius", "mean perimeter", "mean area"} <= drifted
    assert drifted <= set(gate.metadata["features"].value.split(", "))
    alerts = warehouse.get().read("SELECT * FROM ml_monitoring_alerts WHERE alert_type = 'DRIFT_DETECTED'")
    assert alerts["drift_type"].tolist() == ["data"] and alerts["severity"][0] == "critical"
    assert count(warehouse.get(), "ml_drift_history", "drift_detected") >= 3
    assert count(warehouse.get(), "ml_performance_metrics", "asset_key = 'eval_metrics'") > 0
    assert count(warehouse.get(), "artifacts", "name = 'monitoring_summary'") == 1
    assert result.output_for_node("monitoring_summary")["status"] == "warn"  # drift alone warns the summary
    # monitoring_alerts publishes the bad window: its report carries the drift and the diagnosis.
    meta = result.asset_materializations_for_node("monitoring_alerts")[0].metadata
    html = Path(meta["report"].value).read_text()
    assert "mean area" in html and 'class="drifted"' in html and meta["diagnosis"].value == "data"
    assert "no monitoring summary is stored" not in html


def test_a_regressed_candidate_fails_the_gate(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", n=300, candidate_error=0.3)
    result = run_window(config_of(file_monitor(path)), warehouse)
    gate_failed(result, "no_confirmed_regression")
    comparison = result.output_for_node("baseline_comparison")
    assert comparison["status"] == "regressed" and comparison["confirmed"]
    assert comparison["metrics"]["accuracy"]["significant"]
    stored = warehouse.get().read("SELECT DISTINCT verdict FROM model_comparisons")
    assert stored["verdict"].tolist() == ["regressed"]
    assert count(warehouse.get(), "ml_monitoring_alerts", "alert_type = 'PERFORMANCE_DEGRADED'") == 1
    assert result.output_for_node("monitoring_summary")["status"] == "fail"


def test_a_window_fixed_on_rerun_is_released_and_its_alerts_resolved(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", shift={"mean radius": 1.4, "mean perimeter": 1.4, "mean area": 1.8})
    config = config_of(file_monitor(path))
    gate_failed(run_window(config, warehouse), "no_drift_alert")
    traffic_file(path)  # the upstream data is corrected, and the window re-run
    result = run_window(config, warehouse)
    assert result.success and "approved_window" in materialized(result)
    alerts = warehouse.get().read("SELECT alert_type, status, resolved_at, resolution FROM ml_monitoring_alerts "
                                  "WHERE alert_type = 'DRIFT_DETECTED'")
    assert alerts["status"].tolist() == ["resolved"] and alerts["resolved_at"].notna().all()
    assert "no longer raised" in alerts["resolution"][0]
    assert count(warehouse.get(), "artifacts", "name = 'window_approval'") == 1


def test_without_labels_performance_is_estimated(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", labels=False)
    result = run_window(config_of(file_monitor(path)), warehouse)
    assert result.success, checks(result)
    metrics = result.output_for_node("eval_metrics")
    assert metrics["estimated"] and 0.5 < metrics["metrics"]["accuracy"] <= 1.0
    assert count(warehouse.get(), "ml_performance_metrics", "estimated AND metric_name = 'accuracy'") == 1
    assert result.output_for_node("baseline_comparison")["status"] == "skipped"
    assert "skipped" in result.output_for_node("concept_drift_report")


def test_the_inference_log_is_the_default_traffic_source(tmp_path, warehouse):
    frame = pd.read_csv(traffic_file(tmp_path / "t.csv", n=80))
    features = [c for c in frame.columns if c not in
                ("ts", "request_id", "model_version", "prediction", "confidence", "latency_ms", "error", "label")]
    wh = warehouse.get()
    append_inference(wh, pd.DataFrame({
        "ts": pd.to_datetime(frame["ts"]), "model_name": MODEL, "model_version": frame["model_version"],
        "request_id": frame["request_id"], "features": frame[features].to_dict("records"),
        "prediction": frame["prediction"], "confidence": frame["confidence"],
        "latency_ms": frame["latency_ms"], "error": None}))
    append_labels(wh, frame[frame["model_version"] == "logistic_regression"][["request_id", "label"]])
    monitor = bundled_monitor()
    monitor.pop("traffic")
    result = run_window(config_of(monitor), warehouse)
    assert result.success, checks(result)
    window = result.output_for_node("traffic_window")
    assert len(window) == 160 and window["label"].notna().all()
    assert result.output_for_node("eval_metrics")["estimated"] is False


def test_a_drift_alert_reaches_slack_from_the_gate_with_its_diagnosis(tmp_path, warehouse, monkeypatch):
    from monitoring_pipeline_tests.receivers import Receiver, free_port

    port = free_port()
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"http://127.0.0.1:{port}/services/hook")
    receiver = Receiver(port)
    try:
        path = traffic_file(tmp_path / "t.csv", shift={"mean radius": 1.4, "mean perimeter": 1.4, "mean area": 1.8})
        assert not run_window(config_of(file_monitor(path)), warehouse).success
    finally:
        receiver.close()
    [(_, body)] = receiver.posts
    assert body["text"].startswith("[critical] DRIFT_DETECTED") and "Diagnosis (data): The input data shifted" in body["text"]
    assert "mean area" in body["text"] and "Recommended action:" in body["text"]
    status = warehouse.get().read("SELECT channel, status FROM alert_delivery_status ORDER BY channel")
    assert status.values.tolist() == [["log", "delivered"], ["slack", "delivered"]]
