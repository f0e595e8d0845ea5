"""Alerts built from drift reports, quality results, SLO breaches and comparisons."""

import numpy as np
import pandas as pd

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.core.alert_rules import (
    alert_id, comparison_alerts, drift_alerts, estimated_accuracy_breach, quality_alerts, slo_alerts)
from monitoring_pipeline.core.quality import QualityResult

WHERE = dict(model_name="m", window="2026-01-05", model_version="v1")


def frame(shift=0.0, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(shift, 1, n), "b": rng.normal(0, 1, n), "c": rng.normal(0, 1, n)})


def report(shift):
    ref = compute_dataset_profile(frame(), "tabular")
    return compare_profiles(ref, compute_dataset_profile(frame(shift, seed=1), "tabular", reference=ref))


def test_a_data_drift_alert_is_critical_and_names_the_drifted_feature_with_numbers():
    [alert] = drift_alerts(report(1.0), "data", **WHERE)
    assert alert.severity == "critical" and alert.alert_type == "DRIFT_DETECTED"
    assert alert.affected_features == ("a",)
    top = alert.details["top_features"][0]
    assert top["feature"] == "a" and top["effect_size"] > 0.478
    assert abs(top["cur_mean"] - top["ref_mean"] - 1.0) < 0.1
    assert "retrain" in alert.recommended_action


def test_no_alert_without_drift_and_warning_severity_at_warn():
    assert drift_alerts(report(0.0), "data", **WHERE) == []
    warn = report(0.35)
    assert warn["status"] == "warn"
    assert [a.severity for a in drift_alerts(warn, "data", **WHERE)] == ["warning"]
    assert [a.severity for a in drift_alerts(warn, "prediction", **WHERE)] == ["info"]


def test_alert_ids_are_stable_per_model_window_type_and_features():
    first = drift_alerts(report(1.0), "data", **WHERE)[0]
    again = drift_alerts(report(1.0), "data", **WHERE)[0]
    assert first.alert_id == again.alert_id == alert_id("m", "2026-01-05", "DRIFT_DETECTED", "data", ["a"])
    other_day = drift_alerts(report(1.0), "data", **{**WHERE, "window": "2026-01-06"})[0]
    assert other_day.alert_id != first.alert_id


def test_quality_failures_are_critical_and_unseen_categories_info():
    quality = QualityResult(False, 10, [
        {"type": "missing_column", "feature": "x", "failed": True, "message": "x is missing from the window"},
        {"type": "unseen_categories", "feature": "city", "failed": False, "message": "city: 3 new"}])
    alerts = quality_alerts(quality, **WHERE)
    assert [(a.severity, a.affected_features) for a in alerts] == [("critical", ("x",)), ("info", ("city",))]
    assert "x is missing" in alerts[0].message


def test_slo_breaches_map_to_performance_or_infrastructure_alerts():
    breaches = [{"slo": "accuracy", "value": 0.8, "bound": 0.9, "message": "accuracy low"},
                {"slo": "latency_p95_ms", "value": 150, "bound": 100, "message": "slow"}]
    acc, lat = slo_alerts(breaches, **WHERE)
    assert (acc.alert_type, acc.severity) == ("PERFORMANCE_DEGRADED", "critical")
    assert (lat.alert_type, lat.severity) == ("SLO_BREACH", "warning") and "infrastructure" in lat.recommended_action


def accuracy_estimate(value, low, high, reliable=True, reason=""):
    entry = {"estimate": value, "low": low, "high": high, "method": "pape", "reliable": reliable, "reason": reason}
    return {"accuracy": entry, "reliable": reliable, "reason": reason, "method": "pape"}


def test_an_estimated_accuracy_breach_is_a_warning_with_its_interval_and_only_a_realized_one_is_critical():
    breach = estimated_accuracy_breach(accuracy_estimate(0.71, 0.64, 0.78), 0.9)
    assert breach["estimated"] and breach["reliable"] and breach["value"] == 0.71
    assert breach["message"] == "estimated accuracy 0.710 [0.640, 0.780] below the SLO 0.9, labels pending"
    [estimated] = slo_alerts([breach], **WHERE)
    assert (estimated.alert_type, estimated.severity) == ("PERFORMANCE_DEGRADED", "warning")
    assert estimated.message == breach["message"] and "Wait for labels" in estimated.recommended_action
    [realized] = slo_alerts([{"slo": "accuracy", "value": 0.69, "bound": 0.9, "message": "accuracy 0.69 is below"}],
                            **WHERE)
    assert realized.severity == "critical"
    assert realized.alert_id != estimated.alert_id  # labels arriving raise a new, critical alert
    assert estimated_accuracy_breach(accuracy_estimate(0.93, 0.90, 0.96), 0.9) is None
    assert estimated_accuracy_breach(accuracy_estimate(0.71, 0.64, 0.78), None) is None
    assert estimated_accuracy_breach({"mae": {"estimate": 1.0}, "reliable": True}, 0.9) is None  # no accuracy


def test_an_unreliable_estimate_breaches_whatever_its_value_and_says_the_accuracy_is_unknown():
    why = "inputs outside the reference: a classifier tells the window from it with AUC 0.99"
    breach = estimated_accuracy_breach(accuracy_estimate(0.97, 0.95, 0.99, reliable=False, reason=why), 0.9)
    assert breach is not None and not breach["reliable"]
    [alert] = slo_alerts([breach], **WHERE)
    assert alert.severity == "warning" and alert.alert_type == "PERFORMANCE_DEGRADED"
    assert alert.message == f"estimate unreliable: {why}; accuracy unknown until labels arrive"
    assert "Wait for labels" in alert.recommended_action and "input drift" in alert.recommended_action
    overall = accuracy_estimate(0.95, 0.93, 0.97)  # the entry says reliable, the result as a whole does not
    overall.update(reliable=False, reason="too few effective reference rows (ESS 12)")
    assert not estimated_accuracy_breach(overall, 0.9)["reliable"]
    assert "ESS 12" in estimated_accuracy_breach(overall, 0.9)["message"]


def test_only_a_confirmed_regression_raises_a_comparison_alert():
    comparison = {"status": "regressed", "confirmed": True, "regressed": ["accuracy"],
                  "metrics": {"accuracy": {"delta": -0.08, "gates": True}}}
    [alert] = comparison_alerts(comparison, **WHERE)
    assert "accuracy -0.080" in alert.message
    assert comparison_alerts({**comparison, "confirmed": False}, **WHERE) == []
