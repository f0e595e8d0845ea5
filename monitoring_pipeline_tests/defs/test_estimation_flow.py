"""A served model's window before and after its labels: the estimate, its gate and alerts, then
the realized value replacing it (issue 13's rotated-digits case, through the real assets)."""

import os
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from monitoring_pipeline.demo.drift import inject
from monitoring_pipeline.lib import loop
from monitoring_pipeline.storage.traffic import append_labels

from .conftest import config_of, count, run_window

MODEL = "digits"
DAY = date(2026, 1, 5)


def digits_config():
    return config_of({
        "name": MODEL, "modality": "vision", "input_column": "image", "task": "classification",
        "reference": {"source": "bundled", "dataset": "digits"},
        "traffic": {"source": "warehouse", "rows_per_day": 60}, "scheduled": False,
        "model": {"kind": "image_cnn", "params": {"epochs": 4}},
        "thresholds": {"slo": {"accuracy": 0.9, "latency_p95_ms": 100_000, "error_rate": 0.05}},
    })


def checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def rotated_day(tmp_path, warehouse, monkeypatch):
    """v1 of the digits CNN served 120 real images turned by 30 degrees; labels not yet known."""
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    config = digits_config()
    monitor, wh = config.monitor(MODEL), warehouse.get()
    loop.ensure_champion(wh, monitor)
    rows = pd.concat([loop.traffic_day(monitor, i)[0] for i in (0, 1)], ignore_index=True)
    rows = inject(rows, "rotation", 30, image_column="image")
    ts = pd.Timestamp(DAY) + pd.Series(pd.to_timedelta(range(len(rows)), unit="min"))
    loop.serve_day(wh, monitor, rows, ts, label_delay=timedelta(days=3650), prefix="rot")  # labels far off
    realized = float((wh.read("SELECT prediction FROM inference_log ORDER BY request_id")["prediction"].to_numpy()
                      == rows["label"].astype(str).to_numpy()).mean())
    return config, wh, rows, realized


def test_rotated_digits_are_never_estimated_ok_and_labels_replace_the_estimate(rotated_day, warehouse):
    config, wh, rows, realized = rotated_day
    assert realized < 0.75  # the rotation hurts the CNN

    before = run_window(config, warehouse, DAY, MODEL)
    metrics = before.output_for_node("eval_metrics")
    assert metrics["estimated"] and metrics["n_labeled"] == 0
    estimate = metrics["estimate"]["accuracy"]
    assert abs(estimate["estimate"] - realized) <= 0.1 or not estimate["reliable"]
    slo = checks(before)["eval_metrics_accuracy_slo"]
    assert not slo.passed  # never "ok" above the SLO while the realized accuracy is far below it
    assert slo.severity.value == "WARN"  # an estimate warns; it does not block
    if not estimate["reliable"]:
        assert "estimate unreliable: inputs outside the reference" in slo.metadata["message"].value
    stored = wh.read("""SELECT metric_value, ci_low, ci_high, reliable, method FROM ml_performance_metrics
                        WHERE metric_name = 'accuracy' AND data_split = 'production'""")
    assert len(stored) == 1 and stored["ci_low"][0] <= stored["metric_value"][0] <= stored["ci_high"][0]
    assert bool(stored["reliable"][0]) == estimate["reliable"] and stored["method"][0] in ("pape", "cbpe")
    alerts = wh.read("SELECT severity, message FROM ml_monitoring_alerts WHERE alert_type = 'PERFORMANCE_DEGRADED'")
    assert len(alerts) >= 1 and set(alerts["severity"]) == {"warning"}  # estimated: never critical
    assert "labels" in alerts["message"][0]
    prom = Path(os.environ["MONITORING_METRICS"]).read_text()
    assert f'ml_monitoring_estimated_accuracy{{model="{MODEL}",version="v1"}} {estimate["estimate"]}' in prom

    # the labels arrive; the window is judged again
    ids = wh.read("SELECT request_id FROM inference_log ORDER BY request_id")["request_id"]
    append_labels(wh, pd.DataFrame({"request_id": ids, "label": rows["label"].astype(str).to_numpy(),
                                    "labeled_at": pd.Timestamp(DAY) + pd.Timedelta(days=2)}))
    after = run_window(config, warehouse, DAY, MODEL)
    assert not after.output_for_node("eval_metrics")["estimated"]
    accuracy = wh.read("""SELECT metric_value, estimated FROM ml_performance_metrics
                          WHERE metric_name = 'accuracy' AND data_split = 'production'""")
    assert len(accuracy) == 1 and not accuracy["estimated"][0]  # one row, the realized one
    assert accuracy["metric_value"][0] == pytest.approx(realized)
    assert count(wh, "ml_performance_metrics", "data_split = 'production' AND estimated") == 0
    kept = wh.read("SELECT estimate, realized FROM performance_estimates WHERE metric_name = 'accuracy'")
    assert len(kept) == 1 and kept["estimate"][0] == pytest.approx(estimate["estimate"])
    assert kept["realized"][0] == pytest.approx(realized)
    slo = checks(after)["eval_metrics_accuracy_slo"]
    assert not slo.passed and slo.severity.value == "ERROR"  # realized: the gate's full weight
    severities = set(wh.read("SELECT severity FROM ml_monitoring_alerts WHERE alert_type = 'PERFORMANCE_DEGRADED' "
                             "AND status = 'open'")["severity"])
    assert "critical" in severities
    prom = Path(os.environ["MONITORING_METRICS"]).read_text()
    assert f'ml_monitoring_accuracy{{model="{MODEL}",version="v1"}}' in prom
    assert "ml_monitoring_estimated_accuracy{" not in prom


def diabetes_files(tmp_path, labels: bool):
    """scikit-learn's diabetes progression (real, regression): a ridge model fitted on 200 rows,
    its predictions on 142 others as the reference and on the last 100 as a day's traffic."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    data = load_diabetes(as_frame=True).frame.rename(columns={"target": "label"})
    features = [c for c in data.columns if c != "label"]
    model = Ridge(alpha=0.1).fit(data[features][:200], data["label"][:200])
    reference = data[200:342].copy()
    reference["prediction"] = model.predict(reference[features])
    reference.to_csv(tmp_path / "reference.csv", index=False)
    traffic = data[342:].reset_index(drop=True)
    traffic["prediction"] = model.predict(traffic[features])
    realized_mae = float((traffic["label"] - traffic["prediction"]).abs().mean())
    traffic.insert(0, "ts", pd.Timestamp(DAY) + pd.to_timedelta(range(len(traffic)), unit="min"))
    traffic.insert(1, "request_id", [f"q{i}" for i in range(len(traffic))])
    traffic["model_version"] = "ridge"
    traffic["latency_ms"] = 2.0
    if not labels:
        traffic["label"] = None
    traffic.to_csv(tmp_path / "traffic.csv", index=False)
    return realized_mae


def diabetes_config(tmp_path):
    return config_of({
        "name": "diabetes", "modality": "tabular", "task": "regression", "champion": "ridge", "estimation": "dle",
        "reference": {"source": "file", "path": str(tmp_path / "reference.csv")},
        "traffic": {"source": "file", "path": str(tmp_path / "traffic.csv")},
        "thresholds": {"slo": {"latency_p95_ms": 1000, "error_rate": 0.05}},
    })


def test_a_regression_window_is_estimated_by_dle_until_its_labels_arrive(tmp_path, warehouse):
    realized_mae = diabetes_files(tmp_path, labels=False)
    config = diabetes_config(tmp_path)
    before = run_window(config, warehouse, DAY, "diabetes")
    assert before.success
    metrics = before.output_for_node("eval_metrics")
    assert metrics["estimated"] and metrics["estimate"]["method"] == "dle"
    mae = metrics["estimate"]["mae"]
    assert mae["low"] <= mae["estimate"] <= mae["high"] and abs(mae["estimate"] - realized_mae) < 0.25 * realized_mae
    wh = warehouse.get()
    assert set(wh.read("SELECT metric_name FROM ml_performance_metrics WHERE estimated")["metric_name"]) == \
        {"mae", "rmse"}
    diabetes_files(tmp_path, labels=True)
    after = run_window(config, warehouse, DAY, "diabetes")
    assert after.success and not after.output_for_node("eval_metrics")["estimated"]
    kept = wh.read("SELECT estimate, realized FROM performance_estimates WHERE metric_name = 'mae'")
    assert len(kept) == 1 and kept["realized"][0] == pytest.approx(realized_mae)
    assert count(wh, "ml_performance_metrics", "estimated") == 0


def test_a_window_the_estimate_cannot_read_is_a_stated_finding(tmp_path, warehouse):
    """A predicted value the calibration sample never had: the window keeps every other result."""
    diabetes_files(tmp_path, labels=False)
    traffic = pd.read_csv(tmp_path / "traffic.csv")
    traffic["prediction"] = "not a number"
    traffic.to_csv(tmp_path / "traffic.csv", index=False)
    result = run_window(diabetes_config(tmp_path), warehouse, DAY, "diabetes")
    metrics = result.output_for_node("eval_metrics")
    assert metrics["estimate"] is None and not metrics["estimated"]
    assert metrics["estimate_unavailable"]
    assert result.output_for_node("monitoring_summary")["status"]  # the window's summary is still made
