"""The main job of the embedded default: the closed loop, day by day, on real data.

``closed_loop_job`` replays a served model's story from a clean slate. For each day it
runs, as Dagster runs of this instance (so the UI shows them):

1. ``simulate_traffic_job``: the champion serves the day's real rows, with the injected
   drift from its day on; labels follow after the configured delay.
2. ``monitoring_job`` for the day's partition: profiles, drift, performance, checks.
3. A tick of ``retrain_on_drift_sensor`` (the sensor's own function, evaluated against
   this instance) and, for each run it requests, ``retrain_model_job`` with the
   request's config and tags: what the daemon does when it runs.

Then it prints the timeline, one row per day, and stores it as the run's metadata.
"""

import shutil
from datetime import date, timedelta

import dagster as dg
from pydantic import Field

from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.paths import child
from monitoring_pipeline.lib.settings import models_dir
from monitoring_pipeline.storage.replay import forget_model

from .partitions import window_key
from .resources import WarehouseResource

COLUMNS = ("day", "served by", "accuracy", "max drift", "status", "action")


class StoryConfig(dg.Config):
    model: str = Field("digits_classifier", description="The served model whose story is replayed (its "
                                                        "history is cleared first).")
    days: int = Field(9, description="Simulated days, one run of each job per day.")
    start_date: str | None = Field(None, description="The first day, ISO date (default: the monitors' start_date).")
    drift_kind: str = Field("rotation", description="shift | scale (tabular), brightness | noise | rotation "
                                                    "(vision).")
    drift_size: float = Field(30.0, description="The drift's size: standard deviations, a factor, a pixel "
                                                "offset or degrees.")
    drift_day: int = Field(3, description="The first drifted day, 0-based.")
    # A second, different shift on top of the first: drift must be caught again after the
    # promoted model's reference has followed it to the first shift's regime.
    second_drift_kind: str | None = Field("noise", description="A second shift on top of the first (none: "
                                                               "no second shift).")
    second_drift_size: float = Field(0.3, description="The second shift's size.")
    second_drift_day: int = Field(7, description="The second shift's first day, 0-based.")
    label_delay_hours: float = Field(1.0, description="Hours after a prediction until its label arrives.")


def day_summary(wh, model: str, day: str) -> dict:
    """What monitoring stored for one window: realized accuracy and the largest drift."""
    acc = wh.read("""SELECT avg(metric_value) AS v FROM ml_performance_metrics
                     WHERE model_name = ? AND metric_name = 'accuracy' AND NOT estimated
                       AND CAST(window_start AS DATE) = CAST(? AS DATE)""", [model, day])
    drift = wh.read("""SELECT feature_name, effect_size, severity, drift_detected FROM ml_drift_history
                       WHERE model_name = ? AND drift_type = 'data' AND current_period = ?
                       ORDER BY drift_detected DESC, CASE severity WHEN 'alert' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END,
                                effect_size DESC NULLS LAST LIMIT 1""", [model, day])
    accuracy = acc["v"].iloc[0] if len(acc) else None
    top = drift.iloc[0] if len(drift) else None
    return {"accuracy": None if accuracy is None or accuracy != accuracy else float(accuracy),
            "max_drift": None if top is None else
            f"{top['feature_name']} {top['effect_size']:.2f} ({top['severity'] if top['drift_detected'] else 'ok'})"}


def _status(result: dg.ExecuteInProcessResult) -> str:
    failed = sorted({e.check_name for e in result.get_asset_check_evaluations() if not e.passed})
    if not result.success and not failed:
        return "run failed"
    return "FAIL: " + ", ".join(failed) if failed else "ok"


def format_timeline(rows: list[dict]) -> str:
    cells = [[str(r[c]) if r[c] is not None else "-" for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]), *map(line, cells)])


def build_story(monitors: MonitorsConfig) -> dg.JobDefinition:
    @dg.op
    def run_story(context: dg.OpExecutionContext, config: StoryConfig, warehouse: WarehouseResource) -> list:
        """Serve, monitor and let the sensor retrain, one day after the other."""
        from monitoring_pipeline.definitions import build_definitions  # the jobs this story runs

        monitor = monitors.monitor(config.model)
        if monitor.model is None:
            raise ValueError(f"monitor {config.model!r} declares no served model; the story needs one")
        if config.days < 1 or not 0 <= config.drift_day or not 0 <= config.second_drift_day:
            raise ValueError("days must be at least 1, drift_day and second_drift_day at least 0")
        checkpoints = child(models_dir(), monitor.name)  # refused before anything is deleted
        wh = warehouse.get()
        cleared = forget_model(wh, monitor.name)
        shutil.rmtree(checkpoints, ignore_errors=True)
        context.log.info(f"{monitor.name}: replaying from a clean slate (cleared {sum(cleared.values())} rows)")
        defs = build_definitions(monitors, warehouse)
        simulate = defs.resolve_job_def("simulate_traffic_job")
        monitoring = defs.resolve_job_def("monitoring_job")
        retrain = defs.resolve_job_def("retrain_model_job")
        sensor = defs.resolve_sensor_def("retrain_on_drift_sensor")
        first = date.fromisoformat(config.start_date or monitors.start_date)
        timeline = []
        for i in range(config.days):
            day = (first + timedelta(days=i)).isoformat()
            drift = ({"kind": config.drift_kind, "size": config.drift_size, "day": 0}
                     if i >= config.drift_day else None)
            second = ({"kind": config.second_drift_kind, "size": config.second_drift_size, "day": 0}
                      if config.second_drift_kind and i >= config.second_drift_day else None)
            served = simulate.execute_in_process(instance=context.instance, tags={"monitoring/model": monitor.name},
                                                 run_config={"ops": {"simulate_traffic": {"config": {
                                                     "model": monitor.name, "days": 1, "start_date": day,
                                                     "first_data_day": i, "drift": drift,
                                                     "second_drift": second,
                                                     "label_delay_hours": config.label_delay_hours}}}})
            version = served.output_for_node("simulate_traffic")[0]["version"]
            checked = monitoring.execute_in_process(instance=context.instance, raise_on_error=False,
                                                    partition_key=window_key(day, monitor.name))
            tick = sensor(dg.build_sensor_context(instance=context.instance, resources={"warehouse": warehouse}))
            requests = [r for r in (tick if isinstance(tick, list) else [])
                        if r.tags.get("monitoring/model") == monitor.name]
            actions = []
            for request in requests:
                outcome = retrain.execute_in_process(instance=context.instance, run_config=request.run_config,
                                                     tags=request.tags).output_for_node("retrain_model")
                actions.append(f"{request.tags['monitoring/trigger']}: retrained {outcome['challenger']}, "
                               f"{outcome['verdict'].split(':')[0]} ({outcome['challenger_accuracy']:.3f} vs "
                               f"{outcome['champion_accuracy']:.3f} on the holdout)")
            if not actions and isinstance(tick, dg.SkipReason):
                note = next((n for n in (tick.skip_message or "").split(" | ")
                             if n.startswith(f"{monitor.name}: ")), "")
                actions.append(note.removeprefix(f"{monitor.name}: ").split("; ")[-1] or "-")
            timeline.append({"day": day, "served by": version, **day_summary(wh, monitor.name, day),
                             "status": _status(checked), "action": "; ".join(actions)})
            row = timeline[-1]
            context.log.info(f"{day}: accuracy {row['accuracy']}, drift {row['max_drift']}, {row['status']}, "
                             f"{row['action']}")
        for row in timeline:
            row["accuracy"] = None if row["accuracy"] is None else f"{row['accuracy']:.3f}"
            row["max drift"] = row.pop("max_drift")
        table = format_timeline(timeline)
        shifts = f"{config.drift_kind} {config.drift_size:g} from day {config.drift_day + 1}" + (
            f", then {config.second_drift_kind} {config.second_drift_size:g} from day {config.second_drift_day + 1}"
            if config.second_drift_kind else "")
        print(f"\nThe closed loop of {monitor.name} ({shifts}):\n{table}\n", flush=True)
        context.add_output_metadata({"timeline": dg.MetadataValue.md(
            "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n" +
            "\n".join("| " + " | ".join(str(r[c]) if r[c] is not None else "-" for c in COLUMNS) + " |"
                      for r in timeline))})
        return timeline

    @dg.job(executor_def=dg.in_process_executor,
            description="The closed loop on real data: traffic, drift, the retraining sensor, promotion, recovery.")
    def closed_loop_job():
        run_story()

    return closed_loop_job
