"""Alerts that reach people: delivery after every step that stores alerts, the daily
digest, and acknowledgement as a job."""

import dagster as dg
from pydantic import Field

from monitoring_pipeline.alerts import AlertPolicy, channels_from_env, redact
from monitoring_pipeline.alerts.channels import LogChannel
from monitoring_pipeline.lib.monitors import MonitorsConfig, alert_policy
from monitoring_pipeline.lib.notify import notify, send_digest
from monitoring_pipeline.lib.plots import markdown_image
from monitoring_pipeline.lib.prometheus import write_metrics
from monitoring_pipeline.lib.report import Report, write_report
from monitoring_pipeline.lib.sources import Window
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.results import acknowledge_alert

from .origin import RUN_TAGS
from .resources import WAREHOUSE_POOL, WarehouseResource


def policy_for(config: MonitorsConfig, model_name: str) -> AlertPolicy:
    return alert_policy(config.monitor(model_name)) if model_name in config.names else AlertPolicy()


def deliver(wh: Warehouse, config: MonitorsConfig, model_name: str, log=None, window: Window | None = None):
    """After a step stored alerts (or found none): send what the model's open alerts are
    owed, rewrite the Prometheus file and, for a window, its HTML report. A failed
    channel is logged (its reason redacted) and kept undelivered for the next run.
    Returns the delivery outcomes and the report (None without a window).

    With a step's ``log``, the "log" channel writes to it: an alert is in the run's own log
    (the UI's run page and, at the run's console level, the terminal), not printed by
    Python's last-resort handler on stderr, which no Dagster log level reaches."""
    channels = channels_from_env()
    if log is not None:
        channels["log"] = LogChannel(logger=log)
    outcomes = notify(wh, model_name, policy_for(config, model_name), channels)
    for o in outcomes:
        if o["status"] == "failed" and log is not None:
            log.warning(redact(f"alert {o['alert_id']} not delivered to {o['channel']}: {o['error']} "
                               "(retried next run)"))
    write_metrics(wh)
    report = None if window is None else write_report(wh, model_name, window.day, window.partition_key)
    return outcomes, report


def report_metadata(report: Report | None) -> dict:
    """The asset's link to its HTML report and the report's key plot."""
    if report is None:
        return {}
    out = {"report": dg.MetadataValue.path(str(report.path))}
    if report.key_plot_uri:
        out["report_plot"] = dg.MetadataValue.md(markdown_image(report.key_plot_uri, "key plot of the report"))
    return out


class AcknowledgeConfig(dg.Config):
    alert_id: str = Field(description="The open alert's id (ml_monitoring_alerts.alert_id).")
    by: str = Field(description="Who acknowledges it, as recorded.")


def build_alerting(config: MonitorsConfig) -> tuple[dict, list]:
    monitors = config

    @dg.op(pool=WAREHOUSE_POOL)
    def acknowledge(context: dg.OpExecutionContext, config: AcknowledgeConfig, warehouse: WarehouseResource) -> str:
        """Mark an open alert acknowledged: it is not notified again."""
        if not acknowledge_alert(warehouse.get(), config.alert_id, config.by):
            raise ValueError(f"no open alert with id {config.alert_id!r}")
        context.log.info(f"alert {config.alert_id} acknowledged by {config.by}")
        return config.alert_id

    @dg.op(pool=WAREHOUSE_POOL)
    def send_alert_digest(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> dict:
        """E-mail the day's open warnings (routing: warnings go to Slack at once and to this digest)."""
        result = send_digest(warehouse.get(), {m.name: alert_policy(m) for m in monitors.monitors})
        context.log.info(redact(f"digest: {result}"))
        if result["status"] == "failed":
            raise RuntimeError(redact(f"the digest e-mail failed: {result['error']}; its warnings stay owed"))
        return result

    @dg.job(executor_def=dg.in_process_executor, run_tags=RUN_TAGS,
            description="Acknowledge an alert (config: alert_id, by).")
    def acknowledge_alert_job():
        acknowledge()

    @dg.job(executor_def=dg.in_process_executor, run_tags=RUN_TAGS,
            description="E-mail the open warnings of the day.")
    def alert_digest_job():
        send_alert_digest()

    daily_alert_digest = dg.ScheduleDefinition(
        name="daily_alert_digest", job=alert_digest_job, cron_schedule="0 8 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING, description="The daily digest e-mail of warnings (seed 14.7).")
    return ({"acknowledge_alert_job": acknowledge_alert_job, "alert_digest_job": alert_digest_job},
            [daily_alert_digest])
