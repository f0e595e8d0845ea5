"""Alerts built from drift reports, quality results, SLO breaches and comparisons."""

import numpy as np
import pandas as pd

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.core.alert_rules import (
    alert_id, comparison_alerts, drift_alerts, quality_alerts, slo_alerts)
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


def test_only_a_confirmed_regression_raises_a_comparison_alert():
    comparison = {"status": "regressed", "confirmed": True, "regressed": ["accuracy"],
                  "metrics": {"accuracy": {"delta": -0.08, "gates": True}}}
    [alert] = comparison_alerts(comparison, **WHERE)
    assert "accuracy -0.080" in alert.message
    assert comparison_alerts({**comparison, "confirmed": False}, **WHERE) == []
