"""Jobs and schedules: the whole window every 6 hours and once a day, weekly retention.

Every run of a window computes and stores all of its findings (drift of inputs,
outputs and concept, metrics, comparison, summary, alerts, report): the 6-hourly run
judges today's window so far, the daily run yesterday's complete one.
"""

from datetime import datetime, timedelta

import dagster as dg
from pydantic import Field

from monitoring_pipeline.lib.dagster_names import MONITORING_JOB
from monitoring_pipeline.lib.monitors import MonitorsConfig, monitor_run_tags
from monitoring_pipeline.storage.traffic import delete_raw_logs

from .origin import RUN_TAGS
from .partitions import register_days, window_key
from .resources import WAREHOUSE_POOL, WarehouseResource
from .window_assets import GROUP


def build_jobs(config: MonitorsConfig) -> dict:
    class RetentionConfig(dg.Config):
        keep_days: int = Field(config.retention_days, description="Raw traffic (inference_log and labels) "
                                                                  "older than this many days is deleted.")

    @dg.op(pool=WAREHOUSE_POOL)
    def delete_old_raw_logs(context: dg.OpExecutionContext, config: RetentionConfig,
                            warehouse: WarehouseResource) -> dict:
        """Delete inference_log rows (and their labels) older than keep_days; history tables stay."""
        if config.keep_days < 1:
            raise ValueError("keep_days must be at least 1")
        cutoff = datetime.now() - timedelta(days=config.keep_days)
        deleted = delete_raw_logs(warehouse.get(), cutoff)
        context.log.info(f"retention: kept {config.keep_days} days, deleted {deleted}")
        return deleted

    @dg.job(executor_def=dg.in_process_executor, run_tags=RUN_TAGS,
            description="Delete raw traffic older than the retention.")
    def retention_job():
        delete_old_raw_logs()

    return {
        MONITORING_JOB: dg.define_asset_job(
            MONITORING_JOB, selection=dg.AssetSelection.groups(GROUP), executor_def=dg.in_process_executor,
            run_tags=RUN_TAGS,
            description="The whole monitoring of one window: traffic, drift, metrics, comparison, summary, alerts, "
                        "then the blocking gates (a failed gate fails the run and skips approved_window)."),
        "reference_job": dg.define_asset_job(
            "reference_job", selection=dg.AssetSelection.assets("reference_profile"),
            executor_def=dg.in_process_executor, run_tags=RUN_TAGS,
            description="Rebuild a model's reference profiles."),
        "retention_job": retention_job,
    }


def build_schedules(config: MonitorsConfig, jobs: dict) -> list[dg.ScheduleDefinition]:
    start = datetime.fromisoformat(config.start_date).date()
    running = dg.DefaultScheduleStatus.RUNNING
    scheduled = [m.name for m in config.monitors if m.scheduled]

    def requests(context: dg.ScheduleEvaluationContext, day, run_key_suffix: str):
        if day < start:
            return dg.SkipReason(f"{day} is before the monitors' start_date {start}")
        # a schedule cannot return dynamic_partitions_requests (a sensor can): it registers the day itself
        register_days(context.instance, [day])
        return [dg.RunRequest(run_key=f"{model}|{day}|{run_key_suffix}", partition_key=window_key(day, model),
                              tags=monitor_run_tags(config.monitor(model))) for model in scheduled]

    @dg.schedule(cron_schedule="0 */6 * * *", job=jobs["monitoring_job"], default_status=running,
                 description="Every 6 hours: today's window so far of each scheduled model (one run per model), "
                             "drift with the window's whole record.")
    def data_drift_every_6_hours(context: dg.ScheduleEvaluationContext):
        """Today's window so far, every 6 hours (seed Phase 14, 14.5): drift with the window's whole
        record, so an intraday drift alert comes with its metrics, summary and diagnosis."""
        now = context.scheduled_execution_time
        return requests(context, now.date(), f"{now:%H}h")

    @dg.schedule(cron_schedule="30 0 * * *", job=jobs["monitoring_job"], default_status=running,
                 description="Daily at 00:30: yesterday's complete window of each scheduled model (one run per "
                             "model and day): concept drift, metrics, comparison, summary and alerts.")
    def daily_monitoring(context: dg.ScheduleEvaluationContext):
        """Yesterday's complete window: concept drift, metrics, comparison, summary and alerts."""
        return requests(context, (context.scheduled_execution_time - timedelta(days=1)).date(), "daily")

    @dg.schedule(cron_schedule="0 3 * * 0", job=jobs["retention_job"], default_status=running,
                 description="Sundays at 03:00: delete raw traffic older than the retention; history tables stay.")
    def weekly_retention(context: dg.ScheduleEvaluationContext):
        """Weekly clean-up of raw traffic older than the retention; history tables are kept."""
        day = context.scheduled_execution_time.date()
        return dg.RunRequest(run_key=f"retention|{day}", run_config={
            "ops": {"delete_old_raw_logs": {"config": {"keep_days": config.retention_days}}}})

    return [data_drift_every_6_hours, daily_monitoring, weekly_retention]
