"""Asset checks that report on a window without blocking it.

Latency, error-rate and accuracy SLOs are checked where they are measured and never
stop the window: the summary and the alerts record the breach. The blocking gates are
on ``window_gate`` (gate_assets.py), after every finding of the window is stored.
"""

import dagster as dg
import pandas as pd

from monitoring_pipeline.core.alert_rules import estimated_accuracy_breach
from monitoring_pipeline.core.service import service_metrics, slo_breaches
from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.sources import served_rows

from .metadata import rounded
from .partitions import window_of, window_partitions

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def accuracy_slo_result(eval_metrics: dict, bound: float | None) -> dg.AssetCheckResult:
    """The accuracy SLO verdict of a window. Realized: ERROR below the SLO. Estimated (labels
    pending): WARN, passing iff the estimate is at or above the SLO; an unreliable estimate
    never passes. Neither labels nor an estimate: nothing to judge, passes."""
    estimate = eval_metrics.get("estimate") if eval_metrics["estimated"] else None
    entry = (estimate or {}).get("accuracy")
    if isinstance(entry, dict):
        breach = estimated_accuracy_breach(estimate, bound)
        value = entry.get("estimate")
        if breach is not None:
            message = breach["message"]
        elif bound is None:
            message = "no SLO on accuracy"
        elif value is None:
            message = "no labels and no estimate: " + (entry.get("reason") or "the accuracy is undefined")
        else:
            message = f"estimated accuracy {value:.3f} is within its SLO of {bound:g}, labels pending"
        reliable = breach["reliable"] if breach is not None else bool(entry.get("reliable", estimate.get("reliable")))
        return dg.AssetCheckResult(passed=breach is None, severity=WARN, description=message, metadata=rounded({
            "estimate": entry.get("estimate"), "low": entry.get("low"), "high": entry.get("high"),
            "method": entry.get("method", estimate.get("method")), "reliable": reliable, "slo": bound,
            "estimated": True, "message": message}))
    accuracy = eval_metrics["metrics"].get("accuracy")
    breaches = slo_breaches({"accuracy": accuracy}, {"accuracy": bound}) if bound is not None else []
    if breaches:
        message = breaches[0]["message"]
    elif accuracy is None:  # a regression model's metrics have no accuracy
        message = ("no labels and no estimate" if not eval_metrics["metrics"] and not eval_metrics.get("estimate")
                   else "no accuracy in this window's metrics")
    else:
        message = "within its SLO"
    if breaches and eval_metrics["estimated"]:
        message += " (estimated from confidences, labels pending)"
    return dg.AssetCheckResult(passed=not breaches, severity=WARN if eval_metrics["estimated"] else ERROR,
                               description=message, metadata=rounded({
                                   "accuracy": accuracy, "slo": bound, "estimated": eval_metrics["estimated"],
                                   "message": message}))


def build_checks(config: MonitorsConfig) -> list[dg.AssetChecksDefinition]:
    parts = window_partitions(config)

    def slo_check(name: str, slo: str, severity, description: str):
        @dg.asset_check(name=name, asset="traffic_window", partitions_def=parts, description=description)
        def check(context, traffic_window: pd.DataFrame) -> dg.AssetCheckResult:
            monitor = config.monitor(window_of(context).model)
            served = served_rows(traffic_window, monitor)
            measured = service_metrics(served["latency_ms"], served["error"])
            bound = monitor.thresholds.slo.get(slo)
            breaches = slo_breaches(measured, {slo: bound}) if bound is not None else []
            message = breaches[0]["message"] if breaches else "within its SLO"
            return dg.AssetCheckResult(passed=not breaches, severity=severity, description=message,
                                       metadata=rounded({"measured": measured[slo], "slo": bound, "message": message}))

        return check

    @dg.asset_check(asset="eval_metrics", partitions_def=parts)
    def eval_metrics_accuracy_slo(context, eval_metrics: dict) -> dg.AssetCheckResult:
        """Accuracy at or above its SLO (WARN while it is only estimated, and an unreliable estimate
        fails; ERROR once measured)."""
        monitor = config.monitor(window_of(context).model)
        return accuracy_slo_result(eval_metrics, monitor.thresholds.slo.get("accuracy"))

    return [
        slo_check("traffic_window_latency_slo", "latency_p95_ms", WARN, "Latency p95 within its SLO."),
        slo_check("traffic_window_error_rate_slo", "error_rate", ERROR, "Error rate within its SLO."),
        eval_metrics_accuracy_slo,
    ]
