"""The accuracy SLO of a window whose accuracy is only estimated: a warning with its interval,
never critical, and an estimate that cannot be trusted never passes."""

import dagster as dg
import pandas as pd
import pytest

from monitoring_pipeline.core.alert_rules import slo_alerts
from monitoring_pipeline.defs.checks import accuracy_slo_result
from monitoring_pipeline.defs.summary_assets import window_breaches

from .conftest import MODEL, bundled_monitor, config_of

WHY = "inputs outside the reference: a classifier tells the window from it with AUC 0.99"
MONITOR = config_of(bundled_monitor(thresholds={"slo": {"accuracy": 0.9, "latency_p95_ms": 1000}})).monitor(MODEL)
SERVED = pd.DataFrame({"latency_ms": [10.0, 12.0, 11.0], "error": [None, None, None]})


def estimated(value, low, high, reliable=True, reason=""):
    entry = {"estimate": value, "low": low, "high": high, "method": "pape", "reliable": reliable, "reason": reason}
    estimate = {"accuracy": entry, "calibration": {"method": "isotonic"}, "support": {}, "reliable": reliable,
                "reason": reason, "method": "pape"}
    return {"metrics": {"accuracy": value}, "estimated": True, "estimate": estimate, "n_labeled": 0, "reference": {}}


def realized(value):
    return {"metrics": {"accuracy": value}, "estimated": False, "estimate": None, "n_labeled": 200, "reference": {}}


def test_a_realized_breach_fails_with_error_severity():
    result = accuracy_slo_result(realized(0.85), 0.9)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert accuracy_slo_result(realized(0.95), 0.9).passed
    [breach] = window_breaches(MONITOR, SERVED, realized(0.85))
    assert not breach.get("estimated") and slo_alerts([breach], model_name=MODEL, window="d")[0].severity == "critical"


def test_a_reliable_estimate_passes_iff_at_or_above_the_slo_and_warns_with_its_interval():
    low = accuracy_slo_result(estimated(0.71, 0.64, 0.78), 0.9)
    assert not low.passed and low.severity == dg.AssetCheckSeverity.WARN
    meta = {k: v.value for k, v in low.metadata.items()}
    assert (meta["estimate"], meta["low"], meta["high"], meta["method"]) == (0.71, 0.64, 0.78, "pape")
    assert meta["message"] == "estimated accuracy 0.710 [0.640, 0.780] below the SLO 0.9, labels pending"
    ok = accuracy_slo_result(estimated(0.93, 0.90, 0.96), 0.9)
    assert ok.passed and ok.severity == dg.AssetCheckSeverity.WARN and "within its SLO" in ok.metadata["message"].value
    [breach] = window_breaches(MONITOR, SERVED, estimated(0.71, 0.64, 0.78))
    assert breach["estimated"] and (breach["low"], breach["high"]) == (0.64, 0.78)
    [alert] = slo_alerts([breach], model_name=MODEL, window="d")
    assert alert.severity == "warning" and "labels pending" in alert.message
    assert window_breaches(MONITOR, SERVED, estimated(0.93, 0.90, 0.96)) == []


def test_an_unreliable_estimate_fails_whatever_its_value_and_says_why():
    metrics = estimated(0.97, 0.95, 0.99, reliable=False, reason=WHY)  # the rotated digits: confident and wrong
    result = accuracy_slo_result(metrics, 0.9)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    message = result.metadata["message"].value
    assert message.startswith("estimate unreliable: inputs outside the reference") and WHY in message
    assert result.metadata["reliable"].value is False
    [breach] = window_breaches(MONITOR, SERVED, metrics)
    [alert] = slo_alerts([breach], model_name=MODEL, window="d")
    assert alert.severity == "warning" and alert.message == f"estimate unreliable: {WHY}; accuracy unknown until " \
                                                            "labels arrive"


def test_without_labels_or_estimate_there_is_nothing_to_judge():
    none = {"metrics": {}, "estimated": False, "n_labeled": 0, "reference": {}}
    result = accuracy_slo_result(none, 0.9)
    assert result.passed and result.metadata["message"].value == "no labels and no estimate"
    assert window_breaches(MONITOR, SERVED, none) == []
    regression = {"metrics": {"mae": 1.2}, "estimated": False, "n_labeled": 50, "reference": {}}
    assert accuracy_slo_result(regression, 0.9).metadata["message"].value == "no accuracy in this window's metrics"


@pytest.mark.parametrize("value", [0.85, 0.95])
def test_an_estimate_without_interval_is_still_only_a_warning(value):
    legacy = {"metrics": {"accuracy": value}, "estimated": True, "n_labeled": 0, "reference": {}}  # no "estimate"
    result = accuracy_slo_result(legacy, 0.9)
    assert result.passed == (value >= 0.9) and result.severity == dg.AssetCheckSeverity.WARN
    alerts = slo_alerts(window_breaches(MONITOR, SERVED, legacy), model_name=MODEL, window="d")
    assert [a.severity for a in alerts] == ([] if value >= 0.9 else ["warning"])
