"""The main job of the embedded default: the closed loop, day by day, on real data.

``closed_loop_job`` replays a served model's story from a clean slate. For each day it
runs, as Dagster runs of this instance (so the UI shows them):

1. ``simulate_traffic_job``: the champion serves the day's real rows, with the injected
   drift from its day on; labels follow after the configured delay.
2. ``monitoring_job`` for the day's partition: profiles, drift, performance, checks.
3. A tick of ``retrain_on_drift_sensor`` (the sensor's own function, evaluated against
   this instance) and, for each run it requests, ``retrain_model_job`` with the
   request's config and tags, and the tags the daemon adds (the sensor's name, the run
   key): what the daemon does when it runs, so the UI lists these runs under the sensor.

Every run carries the repository label of ``origin.RUN_TAGS`` (through its job), so it is
listed under its job whether it was started here, by the CLI or by the daemon. The console
shows one line per day, then the timeline: the story logs at INFO and its day runs only at
CRITICAL (Dagster's ``loggers`` run config; their whole logs are in the UI). The timeline is
also recorded as materializations of ``closed_loop_timeline``: one per day (its numbers, which
the asset's plots draw), then the whole table with a plot of accuracy per day with the
promotions marked.
"""

import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import Field

from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.paths import child
from monitoring_pipeline.lib.plots import data_uri, markdown_image
from monitoring_pipeline.lib.settings import models_dir, reports_dir
from monitoring_pipeline.storage.replay import forget_model

from .origin import RUN_KEY_TAG, RUN_TAGS
from .partitions import window_key
from .resources import WarehouseResource

STORY_TAG = "monitoring/closed_loop_run"  # on every run the story starts: the closed_loop_job run's id
COLUMNS = ("day", "served by", "accuracy", "max drift", "status", "action")
TIMELINE = dg.AssetKey("closed_loop_timeline")
# Declared so the catalog lists it; closed_loop_job records its materializations.
timeline_spec = dg.AssetSpec(TIMELINE, group_name="closed_loop", kinds={"duckdb", "matplotlib"},
                             description="The closed loop's day-by-day record: one materialization per simulated day "
                                         "(accuracy, max drift, status, action), then the whole table and a plot "
                                         "of accuracy per day with the promotions marked.")


def console(level: str) -> dict:
    """Run config of Dagster's default console logger at ``level`` (it logs DEBUG events otherwise)."""
    return {"loggers": {"console": {"config": {"log_level": level}}}}


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
    """What monitoring stored for one window: realized accuracy and the largest drift, its
    effect named by its method's unit (e.g. "embedding mean_embedding 6.11 (alert)")."""
    acc = wh.read("""SELECT avg(metric_value) AS v FROM ml_performance_metrics
                     WHERE model_name = ? AND metric_name = 'accuracy' AND NOT estimated
                       AND CAST(window_start AS DATE) = CAST(? AS DATE)""", [model, day])
    drift = wh.read("""SELECT feature_name, method, effect_size, severity, drift_detected FROM ml_drift_history
                       WHERE model_name = ? AND drift_type = 'data' AND current_period = ?
                       ORDER BY drift_detected DESC, CASE severity WHEN 'alert' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END,
                                effect_size DESC NULLS LAST LIMIT 1""", [model, day])
    accuracy = acc["v"].iloc[0] if len(acc) else None
    top = drift.iloc[0] if len(drift) else None
    return {"accuracy": None if accuracy is None or accuracy != accuracy else float(accuracy),
            "max_drift": None if top is None else
            f"{top['feature_name']} {top['method']} {_effect(top['effect_size'])} "
            f"({top['severity'] if top['drift_detected'] else 'ok'})"}


def _effect(value) -> str:
    return "beyond float range" if value is None or value != value else f"{value:.2f}"


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


def timeline_table(rows: list[dict]) -> dg.MetadataValue:
    """The timeline as a table the UI renders (accuracy already formatted for people)."""
    columns = [dg.TableColumn(c.replace(" ", "_"), "string") for c in COLUMNS]
    return dg.MetadataValue.table(
        [dg.TableRecord({c.replace(" ", "_"): "-" if r[c] is None else str(r[c]) for c in COLUMNS}) for r in rows],
        schema=dg.TableSchema(columns))


def timeline_plot(model: str, rows: list[dict]) -> tuple[Path, str]:
    """Accuracy per day with each promotion marked, saved as reports/<model>/closed_loop_timeline.png;
    returns its path and a data URI of the same PNG (for Markdown in the UI)."""
    import matplotlib.pyplot as plt

    days = [date.fromisoformat(r["day"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(days, [np.nan if r["accuracy"] is None else r["accuracy"] for r in rows], marker="o",
            label="realized accuracy")
    for day, row in zip(days, rows):
        for version in row["promoted"]:
            ax.axvline(day, color="tab:green", linestyle="--")
            ax.annotate(f"{version} promoted", (day, 0.03), xytext=(-10, 0), textcoords="offset points",
                        rotation=90, color="tab:green", fontsize=8)
    ax.set_xticks(days, [d.isoformat() for d in days])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{model}: accuracy per day (dashed: a challenger promoted after that day's checks)", fontsize=9)
    fig.autofmt_xdate()
    path = child(reports_dir(), model, "closed_loop_timeline.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=90, bbox_inches="tight")
    return path, data_uri(fig)


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
        # The day's line below says what its runs did (a failed gate, a crash: "run failed"); each
        # run's whole log is in the UI. A crash of simulate or retrain fails this run with its error.
        quiet = console("CRITICAL")
        # Dagster's UI says "Manually launched" of any run no schedule, sensor or backfill
        # started; this tag says which closed_loop_job run started it.
        story = {STORY_TAG: context.run_id}
        timeline = []
        for i in range(config.days):
            day = (first + timedelta(days=i)).isoformat()
            drift = ({"kind": config.drift_kind, "size": config.drift_size, "day": 0}
                     if i >= config.drift_day else None)
            second = ({"kind": config.second_drift_kind, "size": config.second_drift_size, "day": 0}
                      if config.second_drift_kind and i >= config.second_drift_day else None)
            served = simulate.execute_in_process(instance=context.instance,
                                                 tags={"monitoring/model": monitor.name, **story},
                                                 run_config={**quiet, "ops": {"simulate_traffic": {"config": {
                                                     "model": monitor.name, "days": 1, "start_date": day,
                                                     "first_data_day": i, "drift": drift,
                                                     "second_drift": second,
                                                     "label_delay_hours": config.label_delay_hours}}}})
            version = served.output_for_node("simulate_traffic")[0]["version"]
            checked = monitoring.execute_in_process(instance=context.instance, raise_on_error=False, run_config=quiet,
                                                    partition_key=window_key(day, monitor.name), tags=story)
            # evaluate_tick, as the daemon does: the requests carry the sensor's name tag
            tick = sensor.evaluate_tick(dg.build_sensor_context(instance=context.instance,
                                                                resources={"warehouse": warehouse}))
            requests = [r for r in tick.run_requests or [] if r.tags.get("monitoring/model") == monitor.name]
            actions, promoted = [], []
            for request in requests:
                tags = {**request.tags, **({RUN_KEY_TAG: request.run_key} if request.run_key else {}), **story}
                outcome = retrain.execute_in_process(instance=context.instance, tags=tags,
                                                     run_config={**quiet, **request.run_config}
                                                     ).output_for_node("retrain_model")
                verdict = outcome["verdict"].split(":")[0]
                if verdict == "promoted":
                    promoted.append(outcome["challenger"])
                actions.append(f"{request.tags['monitoring/trigger']}: retrained {outcome['challenger']}, "
                               f"{verdict} ({outcome['challenger_accuracy']:.3f} vs "
                               f"{outcome['champion_accuracy']:.3f} on the holdout)")
            if not actions and tick.skip_message:
                note = next((n for n in tick.skip_message.split(" | ") if n.startswith(f"{monitor.name}: ")), "")
                actions.append(note.removeprefix(f"{monitor.name}: ").split("; ")[-1] or "-")
            row = {"day": day, "served by": version, **day_summary(wh, monitor.name, day),
                   "status": _status(checked), "action": "; ".join(actions), "promoted": promoted}
            timeline.append(row)
            accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
            context.log.info(f"day {i + 1}/{config.days} {day}: served by {version}, accuracy {accuracy}, "
                             f"max drift {row['max_drift'] or '-'}, {row['status']}; {row['action']}")
            context.log_event(dg.AssetMaterialization(TIMELINE, description=f"{monitor.name} on {day}", metadata={
                "day": day, "served_by": version, "accuracy": row["accuracy"], "max_drift": row["max_drift"] or "-",
                "status": row["status"], "action": row["action"] or "-"}))
        plot, uri = timeline_plot(monitor.name, timeline)
        for row in timeline:
            row["accuracy"] = None if row["accuracy"] is None else f"{row['accuracy']:.3f}"
            row["max drift"] = row.pop("max_drift")
        table = format_timeline(timeline)
        shifts = f"{config.drift_kind} {config.drift_size:g} from day {config.drift_day + 1}" + (
            f", then {config.second_drift_kind} {config.second_drift_size:g} from day {config.second_drift_day + 1}"
            if config.second_drift_kind else "")
        print(f"\nThe closed loop of {monitor.name} ({shifts}):\n{table}\n", flush=True)
        metadata = {"timeline": timeline_table(timeline), "plot": dg.MetadataValue.path(str(plot)),
                    "accuracy_per_day": dg.MetadataValue.md(markdown_image(uri, "accuracy per day"))}
        context.log_event(dg.AssetMaterialization(TIMELINE, description=f"The closed loop of {monitor.name} "
                                                  f"({shifts}), {config.days} days", metadata=metadata))
        context.add_output_metadata(metadata)
        return timeline

    @dg.job(executor_def=dg.in_process_executor, run_tags=RUN_TAGS, config=console("INFO"),
            description="The closed loop on real data: traffic, drift, the retraining sensor, promotion, recovery.")
    def closed_loop_job():
        run_story()

    return closed_loop_job
