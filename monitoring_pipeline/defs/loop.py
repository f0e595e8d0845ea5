"""The closed loop in Dagster: simulated traffic, retraining, rollback and the sensors.

``retrain_on_drift_sensor`` reads each served model's windows from the warehouse,
asks core's retraining policy, records the decision and launches ``retrain_model_job``
for a launched one. ``monitoring_run_failure_sensor`` turns failed monitoring runs,
CLI-started ones included, into alerts.
"""


from datetime import date, datetime, timedelta

import pandas as pd

import dagster as dg
from pydantic import Field

from monitoring_pipeline.alerts import redact
from monitoring_pipeline.core.alert_rules import Alert, alert_id
from monitoring_pipeline.core.retraining import decide_retraining
from monitoring_pipeline.demo.drift import inject
from monitoring_pipeline.lib import loop
from monitoring_pipeline.lib.monitors import MonitorsConfig, monitor_run_tags, retraining_policy
from monitoring_pipeline.models import CheckpointError, read_card
from monitoring_pipeline.storage import registry
from monitoring_pipeline.storage.results import upsert_alerts
from monitoring_pipeline.storage.retraining import observations, past_decisions, record_decision

from .alerting import deliver
from .origin import RUN_TAGS, WINDOW_TAG
from .partitions import register_days
from .resources import WAREHOUSE_POOL, WarehouseResource

MONITORING_JOBS = ("monitoring_job", "tier5_monitoring_job", "simulate_traffic_job",
                   "retrain_model_job")


class RetrainConfig(dg.Config):
    model: str = Field(description="The served model to retrain (a monitor of monitors.yaml with a 'model').")
    reason: str = Field("requested", description="Why, as recorded with the retraining.")
    now: str | None = Field(None, description="ISO date-time the fresh data ends at (default: now).")


class DriftConfig(dg.Config):
    kind: str = Field(description="shift | scale (tabular), brightness | noise | rotation (vision).")
    size: float = Field(description="Standard deviations, a factor, a pixel offset or degrees.")
    day: int = Field(0, description="The first simulated day (0-based) it applies to.")


class SimulateConfig(dg.Config):
    model: str = Field(description="The served model whose traffic is simulated.")
    days: int = Field(7, description="Days of traffic to serve.")
    start_date: str | None = Field(None, description="The first simulated day, ISO date (default: the monitors' "
                                                     "start_date).")
    first_data_day: int = Field(0, description="Which day of the data set the first simulated day serves.")
    label_delay_hours: float = Field(24.0, description="Hours after a prediction until its label arrives.")
    drift: DriftConfig | None = Field(None, description="A drift injected from its day on (none: no drift).")
    second_drift: DriftConfig | None = Field(None, description="A further shift, on top of the first from its "
                                                               "own day.")


class RollbackConfig(dg.Config):
    model: str = Field(description="The served model whose previous champion is restored.")
    reason: str = Field("manual rollback", description="Why, as recorded in the model registry.")


def _served(config: MonitorsConfig, name: str):
    monitor = config.monitor(name)
    if monitor.model is None:
        raise ValueError(f"monitor {name!r} declares no served model; retraining and rollback need one")
    return monitor


def _infrastructure_alert(wh, config: MonitorsConfig, model_name: str, window: str, message: str, action: str,
                          key: str) -> None:
    """A run or a model that failed: an SLO_BREACH alert of the serving/monitoring service, sent at once.
    The message is redacted: an error's text may quote a webhook URL, a user or a password."""
    alert = Alert(alert_id(model_name, window, "SLO_BREACH", None, [key]), "critical", "SLO_BREACH", model_name,
                  window, redact(message), action, None, (key,))
    upsert_alerts(wh, [alert], asset_key=key, partition_key=f"{window}|{model_name}", run_id=None)
    deliver(wh, config, model_name)


def _error_line(error) -> str:
    """An error's class and the first line of its message, redacted: a message may quote a secret."""
    if error is None:
        return ""
    first = (error.message.strip().splitlines() or [""])[0].removeprefix(f"{error.cls_name}: ")
    return f"{error.cls_name}: {redact(first)[:300]}"


def _step_failures(instance: dg.DagsterInstance, run_id: str) -> tuple[dict[str, str], set[str]]:
    """The run's failed steps with their root error (its class and the first line of its
    message, redacted), and the steps of checks that failed."""
    events = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                dg.DagsterEventType.ASSET_CHECK_EVALUATION})
    failed, checks = {}, set()
    for record in events:
        event = record.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:  # the user's error, not Dagster's wrapper
                error = error.cause
            failed[record.step_key] = _error_line(error)
        elif not event.event_specific_data.passed:
            checks.add(record.step_key)
    return failed, checks


def build_loop(config: MonitorsConfig) -> tuple[dict, list]:
    """The loop's jobs (by name) and sensors."""
    monitors = config  # the ops' own ``config`` parameter is their run config

    @dg.op(pool=WAREHOUSE_POOL)
    def retrain_model(context: dg.OpExecutionContext, config: RetrainConfig, warehouse: WarehouseResource) -> dict:
        """Train a challenger on fresh data, compare it with the champion, promote or archive it."""
        monitor = _served(monitors, config.model)
        now = datetime.fromisoformat(config.now) if config.now else datetime.now()
        result = loop.retrain(warehouse.get(), monitor, now, reason=config.reason)
        context.log.info(f"{monitor.name}: {result['verdict']} (challenger {result['challenger']}, "
                         f"champion {result['champion']})")
        context.add_output_metadata({k: dg.MetadataValue.json(v) if isinstance(v, list) else v
                                     for k, v in result.items() if v is not None})
        return result

    @dg.op(pool=WAREHOUSE_POOL)
    def simulate_traffic(context: dg.OpExecutionContext, config: SimulateConfig,
                         warehouse: WarehouseResource) -> list:
        """Serve ``days`` days of real rows with the champion (trained first if there is
        none), with the injected drift from its day on; labels follow after the delay."""
        monitor = _served(monitors, config.model)
        wh = warehouse.get()
        if config.days < 1:
            raise ValueError("days must be at least 1")
        first = date.fromisoformat(config.start_date or monitors.start_date)
        version = loop.ensure_champion(wh, monitor)
        context.log.info(f"{monitor.name}: champion {version}")
        served = []
        for i in range(config.days):
            rows, time_of_day = loop.traffic_day(monitor, config.first_data_day + i)
            applied = [d for d in (config.drift, config.second_drift) if d is not None and i >= d.day]
            for drift in applied:
                rows = inject(rows, drift.kind, drift.size, features=list(monitor.features or []) or None,
                              image_column=monitor.input_column, seed=config.first_data_day + i)
            day = first + timedelta(days=i)
            result = loop.serve_day(wh, monitor, rows, pd.Timestamp(day) + time_of_day,
                                    label_delay=timedelta(hours=config.label_delay_hours),
                                    prefix=f"{monitor.name}-{day.isoformat()}")
            register_days(context.instance, [day])  # the day's window partitions exist from now on
            served.append({"day": day.isoformat(), **result,
                           "drift": " + ".join(f"{d.kind} {d.size:g}" for d in applied)})
            context.log.info(f"{day}: {result['requests']} requests served by {result['version']}, "
                             f"accuracy {result['accuracy']:.3f}")
        context.add_output_metadata({"days": len(served), "requests": sum(s["requests"] for s in served),
                                     "served": dg.MetadataValue.json(served)})
        return served

    @dg.op(pool=WAREHOUSE_POOL)
    def rollback_model(context: dg.OpExecutionContext, config: RollbackConfig, warehouse: WarehouseResource) -> dict:
        """Make the previous champion the champion again."""
        _served(monitors, config.model)
        before, after = registry.rollback(warehouse.get(), config.model, config.reason)
        context.log.info(f"{config.model}: rolled back from {before} to {after}")
        return {"from": before, "to": after}

    @dg.job(executor_def=dg.in_process_executor, run_tags=RUN_TAGS,
            description="Retrain a served model; promote only a better one.")
    def retrain_model_job():
        retrain_model()

    @dg.job(executor_def=dg.in_process_executor, run_tags=RUN_TAGS,
            description="Serve simulated days of real traffic.")
    def simulate_traffic_job():
        simulate_traffic()

    @dg.job(executor_def=dg.in_process_executor, run_tags=RUN_TAGS,
            description="Restore the previous champion of a served model.")
    def rollback_model_job():
        rollback_model()

    served = [m for m in config.monitors if m.model is not None]

    @dg.sensor(job=retrain_model_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Every minute: applies the retraining policy to each served model's monitored windows "
                           "and launches retrain_model_job when it says so (deduplicated by run key).")
    def retrain_on_drift_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        """Apply the retraining policy to every served model's monitored windows."""
        wh = warehouse.get()
        requests, notes = [], []
        for monitor in served:
            champion = registry.champion(wh, monitor.name)
            if champion is None:
                notes.append(f"{monitor.name}: no champion yet")
                continue
            try:
                read_card(champion["path"])
            except CheckpointError as error:  # alert and go on: a bad checkpoint never stops the sensor
                _infrastructure_alert(wh, monitors, monitor.name, date.today().isoformat(), str(error),
                                      "Restore the checkpoint or run rollback_model_job.", "model_not_loaded")
                notes.append(f"{monitor.name}: {error}")
                continue
            obs = observations(wh, monitor.name, champion["metrics"].get("accuracy"),
                               version=champion["model_version"])
            now = max((o.at for o in obs), default=datetime.now())
            past = past_decisions(wh, monitor.name)
            decision = decide_retraining(monitor.name, obs, past, now, retraining_policy(monitor))
            notes.append(f"{monitor.name}: {decision.reason}")
            if decision.trigger is None:
                continue
            if not decision.launch and any(p.run_key == decision.run_key for p in past):
                continue  # this skip is already on record
            record_decision(wh, decision, now, details={"sensor_tick": context.cursor})
            if decision.launch:
                requests.append(dg.RunRequest(run_key=decision.run_key, run_config={"ops": {"retrain_model": {
                    "config": {"model": monitor.name, "reason": decision.reason, "now": now.isoformat()}}}},
                    tags={**monitor_run_tags(monitor), "monitoring/trigger": decision.trigger,
                          "monitoring/model": monitor.name,
                          **({WINDOW_TAG: f"{decision.window}|{monitor.name}"} if decision.window else {})}))
        if requests:
            return requests
        return dg.SkipReason(" | ".join(notes) or "no served models")

    @dg.run_failure_sensor(monitor_all_code_locations=True, default_status=dg.DefaultSensorStatus.RUNNING,
                           description="A failed run of a monitoring job becomes a critical alert (a failed "
                                       "blocking check has stored its own).")
    def monitoring_run_failure_sensor(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
        """A failed monitoring run becomes a critical alert, so nobody misses a silent gap."""
        run = context.dagster_run
        if run.job_name not in MONITORING_JOBS:
            return
        failed, checks = _step_failures(context.instance, run.run_id)
        if failed and set(failed) <= checks:
            return  # a failed blocking check has stored its own alert; a second one would be noise
        partition = run.tags.get("dagster/partition", "")
        day, _, model = partition.partition("|") if "|" in partition else (date.today().isoformat(), "", "")
        model = model or run.tags.get("monitoring/model", "*")
        causes = "; ".join(f"{step}: {error}" for step, error in failed.items() if step not in checks)
        message = f"{run.job_name} run {run.run_id[:8]} failed: {causes or context.failure_event.message or 'no message'}"
        _infrastructure_alert(warehouse.get(), monitors, model, day, message[:2000],
                              "Open the run in the Dagster UI; fix the cause and re-execute it.",
                              f"run_failure:{run.job_name}")

    return ({"simulate_traffic_job": simulate_traffic_job, "retrain_model_job": retrain_model_job,
             "rollback_model_job": rollback_model_job},
            [retrain_on_drift_sensor, monitoring_run_failure_sensor])

