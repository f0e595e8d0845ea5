"""The window's verdict (monitoring_summary) and the alerts it raises (monitoring_alerts).

Both run on every window, whatever its findings: no blocking check sits above them (the
gates are on ``window_gate``, after them), so a bad day keeps its summary, every alert
with its diagnosis, and its report.
"""

from dataclasses import replace

import dagster as dg
import pandas as pd

from monitoring_pipeline.core.alert_rules import (
    comparison_alerts,
    concept_alerts,
    drift_alerts,
    estimated_accuracy_breach,
    quality_alerts,
    slo_alerts,
)
from monitoring_pipeline.core.diagnosis import Diagnosis, WindowFindings, diagnose
from monitoring_pipeline.core.service import service_metrics, slo_breaches
from monitoring_pipeline.core.status import monitoring_status, summarize
from monitoring_pipeline.lib.monitors import MonitorsConfig, retraining_policy
from monitoring_pipeline.storage.results import previous_windows, upsert_alerts
from monitoring_pipeline.storage.runs import save_artifact

from .alerting import deliver, report_metadata
from .metadata import markdown_table, rounded
from .partitions import window_partitions
from .quality import window_quality
from .resources import WAREHOUSE_POOL, WarehouseResource
from .window_assets import GROUP, Step, versions_served


def window_breaches(monitor, served: pd.DataFrame, eval_metrics: dict) -> list[dict]:
    """SLO breaches of the window: latency and errors always, accuracy once measured or estimated
    (an estimated breach carries ``estimated``, its interval, and ``reliable``: an estimate that
    cannot be trusted is a breach whatever its value)."""
    measured = service_metrics(served["latency_ms"], served["error"])
    estimate = eval_metrics.get("estimate") if eval_metrics["estimated"] else None
    measured["accuracy"] = None if estimate is not None else eval_metrics["metrics"].get("accuracy")
    breaches = slo_breaches(measured, monitor.thresholds.slo)
    for b in breaches:
        if b["slo"] == "accuracy" and eval_metrics["estimated"]:  # an estimate without interval nor flag
            b.update(estimated=True, reliable=True)
            b["message"] += " (estimated from confidences, labels pending)"
    if estimate is not None:
        breach = estimated_accuracy_breach(estimate, monitor.thresholds.slo.get("accuracy"))
        breaches += [breach] if breach is not None else []
    return breaches


def window_diagnosis(step: Step, served: pd.DataFrame, data_drift_report: dict, prediction_drift_report: dict,
                     concept_drift_report: dict, eval_metrics: dict) -> Diagnosis:
    """The root-cause diagnosis of the window, against the windows before it."""
    before = previous_windows(step.wh, step.monitor.name, step.window.start)
    service = service_metrics(served["latency_ms"], served["error"])
    measured = None if eval_metrics["estimated"] else eval_metrics["metrics"].get("accuracy")
    return diagnose(WindowFindings(
        input_drift=data_drift_report, output_drift=prediction_drift_report, concept=concept_drift_report,
        accuracy=measured, baseline_accuracy=step.reference().metrics.get("accuracy"),
        max_accuracy_drop=retraining_policy(step.monitor).max_accuracy_drop,
        version=step.monitor.champion, previous_version=before["version"],
        latency_p95_ms=service["latency_p95_ms"], baseline_latency_p95_ms=before["latency_p95_ms"],
        error_rate=service["error_rate"], baseline_error_rate=before["error_rate"]))


def _comparison(baseline_comparison: dict) -> dict | None:
    return None if baseline_comparison.get("status") == "skipped" else baseline_comparison


PLOTTED = ("accuracy", "max_drift_js", "drift_share")


def per_model_series(metadata: dict, model: str) -> dict:
    """The key numbers again as ``"<name> [<model>]"``: the partitions of every model share one
    asset, and the UI's Plots by partition draw one series per metadata name, so each model gets
    its own line instead of alternating points of all models."""
    return {**metadata, **{f"{k} [{model}]": metadata[k] for k in PLOTTED if isinstance(metadata.get(k), float)}}


def build_summary_assets(config: MonitorsConfig) -> list[dg.AssetsDefinition]:
    parts = window_partitions(config)
    inputs = ("traffic_window", "data_drift_report", "prediction_drift_report", "concept_drift_report",
              "eval_metrics", "baseline_comparison")

    @dg.asset(partitions_def=parts, group_name=GROUP, ins={name: dg.AssetIn(name) for name in inputs},
              kinds={"duckdb", "pandas"}, pool=WAREHOUSE_POOL)
    def monitoring_summary(context: dg.AssetExecutionContext, warehouse: WarehouseResource, traffic_window, data_drift_report,
                           prediction_drift_report, concept_drift_report, eval_metrics,
                           baseline_comparison) -> dg.Output[dict]:
        """The window's status (ok / warn / fail), the reasons, and the one-line summary."""
        step = Step(config, context, warehouse)
        served = step.serve(traffic_window)
        warnings = [b["message"] for b in window_breaches(step.monitor, served, eval_metrics)]
        failures = [f["message"] for f in window_quality(step, served).failures]
        if prediction_drift_report["status"] == "alert":
            warnings.append(f"prediction drift alert: {prediction_drift_report['summary']}")
        if concept_drift_report.get("drifted"):
            warnings.append("concept drift: " + "; ".join(concept_drift_report["reasons"]))
        comparison = _comparison(baseline_comparison)
        status, reasons = monitoring_status(comparison, data_drift_report, warnings,
                                            ["data quality failed: " + m for m in failures])
        sentence = summarize(eval_metrics=eval_metrics["metrics"] or None, comparison=comparison,
                             drift=data_drift_report)
        summary = {"status": status, "reasons": reasons, "summary": sentence, "window": step.window.partition_key,
                   "model_name": step.monitor.name, "model_version": step.monitor.champion,
                   "served_by": versions_served(served)}
        save_artifact(step.wh, "report", "monitoring_summary", payload=summary, model_name=step.monitor.name,
                      model_version=step.monitor.champion, asset_key="monitoring_summary", **step.keys)
        context.log.info(f"{step.window.partition_key}: {status.upper()} - {sentence}")
        return dg.Output(summary, metadata=rounded(per_model_series({
            "status": status, "summary": sentence, "model_version": str(step.monitor.champion),
            "served_by": dg.MetadataValue.json(summary["served_by"]),
            "max_drift_js": float(data_drift_report["max_drift"]),
            "drift_share": float(data_drift_report["drift_share"]),
            **{k: float(v) for k, v in (eval_metrics["metrics"] or {}).items()
               if k in ("accuracy", "f1_macro", "rmse") and isinstance(v, (int, float))},
            "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "none")}, step.monitor.name)))

    @dg.asset(partitions_def=parts, group_name=GROUP, kinds={"duckdb", "pandas"}, pool=WAREHOUSE_POOL,
              ins={name: dg.AssetIn(name) for name in (*inputs, "monitoring_summary")})
    def monitoring_alerts(context: dg.AssetExecutionContext, warehouse: WarehouseResource, traffic_window, data_drift_report,
                          prediction_drift_report, concept_drift_report, eval_metrics, baseline_comparison,
                          monitoring_summary) -> dg.Output[list]:
        """The alerts the window raises, stored with their severity and recommended action."""
        step = Step(config, context, warehouse)
        served = step.serve(traffic_window)
        where = dict(model_name=step.monitor.name, window=step.window.day.isoformat(),
                     model_version=step.monitor.champion)
        alerts = [*drift_alerts(data_drift_report, "data", **where),
                  *drift_alerts(prediction_drift_report, "prediction", **where),
                  *concept_alerts(concept_drift_report, **where),
                  *slo_alerts(window_breaches(step.monitor, served, eval_metrics), **where),
                  *comparison_alerts(baseline_comparison, **where),
                  *quality_alerts(window_quality(step, served), **where)]
        diagnosis = window_diagnosis(step, served, data_drift_report, prediction_drift_report, concept_drift_report,
                                     eval_metrics)
        alerts = [replace(a, details={**a.details, "diagnosis": diagnosis.to_dict()}) for a in alerts]
        upsert_alerts(step.wh, alerts, asset_key="monitoring_alerts", **step.keys)
        for a in alerts:
            log = context.log.warning if a.severity != "info" else context.log.info
            log(f"[{a.severity}] {a.alert_type} {a.model_name} {a.window}: {a.message} -> {a.recommended_action}")
        outcomes, report = deliver(step.wh, config, step.monitor.name, context.log, step.window)
        sent = {c: sum(o["channel"] == c and o["status"] == "delivered" for o in outcomes)
                for c in ("slack", "email", "webhook")}
        rows = [{"severity": a.severity, "type": a.alert_type, "message": a.message[:120]} for a in alerts]
        by_severity = {s: sum(a.severity == s for a in alerts) for s in ("critical", "warning", "info")}
        return dg.Output([a.to_dict() for a in alerts], metadata={
            "alerts": len(alerts), **by_severity, **{f"sent_{c}": n for c, n in sent.items()},
            "undelivered": sum(o["status"] == "failed" for o in outcomes), **report_metadata(report),
            "diagnosis": diagnosis.category, "recommended_action": diagnosis.recommended_action,
            "hypothesis": dg.MetadataValue.md(diagnosis.hypothesis + "".join(f"\n- {e}" for e in diagnosis.evidence)),
            "table": dg.MetadataValue.md(markdown_table(rows, ["severity", "type", "message"]) if rows else "none")})

    return [monitoring_summary, monitoring_alerts]
