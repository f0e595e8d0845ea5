"""Asset checks: the pass/fail gates of a window.

Blocking ERROR checks (data quality, drift alert, regression) stop the window's
downstream assets and make ``dagster job execute`` exit non-zero; since the alerts
asset then does not run, each of them stores its own alert first. SLO checks report
without blocking, so the window's summary and alerts still record the breach.
"""

from dataclasses import replace

import dagster as dg
import pandas as pd

from monitoring_pipeline.core.alert_rules import comparison_alerts, drift_alerts, quality_alerts
from monitoring_pipeline.core.diagnosis import WindowFindings, diagnose
from monitoring_pipeline.core.service import service_metrics, slo_breaches
from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.sources import champion_version, version_rows
from monitoring_pipeline.storage.results import previous_windows, upsert_alerts

from .alerting import deliver, report_metadata
from .metadata import markdown_table
from .partitions import window_of, window_partitions
from .quality import window_quality
from .resources import WarehouseResource
from .window_assets import Step

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
ALERTS_ASSET = dg.AssetKey("monitoring_alerts")  # publishes the window when the run reaches it


def _store_alerts(step: Step, alerts: list, check_name: str, config: MonitorsConfig, log=None,
                  ends_window: bool = True) -> dict:
    """Store the gate's alerts. When the window's run ends at this gate (it failed, or no
    later asset publishes), send what is owed and write the window's report and numbers
    here; returns the report's metadata."""
    upsert_alerts(step.wh, alerts, asset_key=check_name, **step.keys)
    if not ends_window:
        return {}
    _, report = deliver(step.wh, config, step.monitor.name, log, step.window)
    return report_metadata(report)


def build_checks(config: MonitorsConfig) -> list[dg.AssetChecksDefinition]:
    parts = window_partitions(config)

    @dg.asset_check(asset="traffic_window", blocking=True, partitions_def=parts)
    def traffic_window_data_quality(context, warehouse: WarehouseResource,
                                    traffic_window: pd.DataFrame) -> dg.AssetCheckResult:
        """The window has rows, the reference's columns, few missing values and no impossible ones."""
        step = Step(config, context, warehouse)
        quality = window_quality(step, step.served(traffic_window))
        where = dict(model_name=step.monitor.name, window=step.window.day.isoformat(),
                     model_version=step.monitor.champion)
        report = _store_alerts(step, quality_alerts(quality, **where), "traffic_window_data_quality", config,
                               context.log, ends_window=not quality.passed)
        rows = [{"type": f["type"], "feature": f["feature"], "failed": f["failed"], "message": f["message"]}
                for f in quality.findings]
        return dg.AssetCheckResult(passed=quality.passed, severity=ERROR, metadata={**report,
            "rows": quality.n_rows, "failures": len(quality.failures),
            "findings": dg.MetadataValue.md(markdown_table(rows, ["type", "feature", "failed", "message"])
                                            if rows else "none")})

    def slo_check(name: str, slo: str, severity, description: str):
        @dg.asset_check(name=name, asset="traffic_window", partitions_def=parts, description=description)
        def check(context, traffic_window: pd.DataFrame) -> dg.AssetCheckResult:
            monitor = config.monitor(window_of(context).model)
            served = version_rows(traffic_window, champion_version(monitor, traffic_window))
            measured = service_metrics(served["latency_ms"], served["error"])
            bound = monitor.thresholds.slo.get(slo)
            breaches = slo_breaches(measured, {slo: bound}) if bound is not None else []
            return dg.AssetCheckResult(passed=not breaches, severity=severity, metadata={
                "measured": measured[slo], "slo": bound,
                "message": breaches[0]["message"] if breaches else "within its SLO"})

        return check

    @dg.asset_check(asset="data_drift_report", blocking=True, partitions_def=parts)
    def data_drift_report_has_no_alert(context, warehouse: WarehouseResource,
                                       data_drift_report: dict) -> dg.AssetCheckResult:
        """ERROR when the window's input drift is at alert severity, WARN when at warn."""
        status = data_drift_report["status"]
        step = Step(config, context, warehouse)
        alerts, extra = [], {}
        if status == "alert":  # the window's later assets do not run: diagnose and alert here
            found = diagnose(WindowFindings(
                input_drift=data_drift_report, version=step.monitor.champion,
                previous_version=previous_windows(step.wh, step.monitor.name, step.window.start)["version"]))
            alerts = [replace(a, details={**a.details, "diagnosis": found.to_dict()})
                      for a in drift_alerts(data_drift_report, "data", model_name=step.monitor.name,
                                            window=step.window.day.isoformat(), model_version=step.monitor.champion)]
            extra = {"diagnosis": found.category, "hypothesis": dg.MetadataValue.md(
                found.hypothesis + "".join(f"\n- {e}" for e in found.evidence))}
        # The 6-hourly drift job ends here too: then this gate publishes the window.
        selected = context.op_execution_context.job_def.asset_layer.selected_asset_keys
        extra |= _store_alerts(step, alerts, "data_drift_report_has_no_alert", config, context.log,
                               ends_window=status == "alert" or ALERTS_ASSET not in selected)
        return dg.AssetCheckResult(passed=status == "ok", severity=ERROR if status == "alert" else WARN,
                                   metadata={"status": status, "summary": data_drift_report["summary"],
                                             "n_drifted": data_drift_report["n_drifted"], **extra})

    @dg.asset_check(asset="baseline_comparison", blocking=True, partitions_def=parts)
    def baseline_comparison_has_no_regression(context, warehouse: WarehouseResource,
                                              baseline_comparison: dict) -> dg.AssetCheckResult:
        """ERROR when the candidate significantly regressed against the champion on the same
        requests; WARN when it regressed by more than the tolerance but within noise."""
        verdict = baseline_comparison["status"]
        confirmed = verdict == "regressed" and baseline_comparison.get("confirmed", True)
        report = {}
        if confirmed:
            step = Step(config, context, warehouse)
            report = _store_alerts(step, comparison_alerts(baseline_comparison, model_name=step.monitor.name,
                                                           window=step.window.day.isoformat(),
                                                           model_version=step.monitor.champion),
                                   "baseline_comparison_has_no_regression", config, context.log)
        return dg.AssetCheckResult(passed=verdict != "regressed", severity=ERROR if confirmed else WARN, metadata={
            **report, "verdict": verdict, "confirmed": bool(confirmed),
            "regressed": ", ".join(baseline_comparison.get("regressed", [])) or "none",
            "reason": baseline_comparison.get("reason", "")})

    @dg.asset_check(asset="eval_metrics", partitions_def=parts)
    def eval_metrics_accuracy_slo(context, eval_metrics: dict) -> dg.AssetCheckResult:
        """Accuracy at or above its SLO (WARN while it is only estimated, ERROR once measured)."""
        monitor = config.monitor(window_of(context).model)
        bound = monitor.thresholds.slo.get("accuracy")
        accuracy = eval_metrics["metrics"].get("accuracy")
        breaches = slo_breaches({"accuracy": accuracy}, {"accuracy": bound}) if bound is not None else []
        return dg.AssetCheckResult(passed=not breaches, severity=WARN if eval_metrics["estimated"] else ERROR,
                                   metadata={"accuracy": accuracy, "slo": bound,
                                             "estimated": eval_metrics["estimated"]})

    return [
        traffic_window_data_quality,
        slo_check("traffic_window_latency_slo", "latency_p95_ms", WARN, "Latency p95 within its SLO."),
        slo_check("traffic_window_error_rate_slo", "error_rate", ERROR, "Error rate within its SLO."),
        data_drift_report_has_no_alert,
        baseline_comparison_has_no_regression,
        eval_metrics_accuracy_slo,
    ]
