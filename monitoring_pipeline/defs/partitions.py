"""Partitions: a day x a monitored model for traffic windows, the model alone for references.

The day dimension is dynamic (``monitoring_days``): a day exists once traffic arrives for
it (``simulate_traffic``, a schedule's tick, the story, a run started for it), so the UI
shows the days that have windows instead of every day since ``start_date``. Keys stay
``"YYYY-MM-DD|<model>"``. Dagster lists a dynamic dimension in the order its keys were
added, so days are registered in chronological order (``register_days`` sorts each call's
days; a day registered after a later one is listed after it).
"""

from collections.abc import Iterable
from datetime import date

import dagster as dg
from sqlalchemy.exc import IntegrityError

from monitoring_pipeline.lib.dagster_names import DAY, DAYS_PARTITIONS, MODEL
from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.sources import Window

DAYS = dg.DynamicPartitionsDefinition(name=DAYS_PARTITIONS)


def model_partitions(config: MonitorsConfig) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(config.names)


def window_partitions(config: MonitorsConfig) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition({DAY: DAYS, MODEL: model_partitions(config)})


def _day(value: date | str) -> str:
    """The day as written in partition keys; other spellings Python would read ('20260105') are refused."""
    try:
        day = date.fromisoformat(str(value)).isoformat()
    except ValueError:
        day = None
    if day != str(value):
        raise ValueError(f"a window's day must be an ISO date like 2026-01-05, got {str(value)!r}")
    return day


def register_days(instance: dg.DagsterInstance, days: Iterable[date | str]) -> list[str]:
    """Add the days to the window partitions of ``instance`` (oldest first); returns the new ones.

    Idempotent: a registered day is left alone. Two processes registering the same day at
    once may collide on Dagster's unique index; the loser finds the day registered.
    """
    wanted = sorted({_day(d) for d in days})
    new = [d for d in wanted if not instance.has_dynamic_partition(DAYS.name, d)]
    if new:
        try:
            instance.add_dynamic_partitions(DAYS.name, new)
        except IntegrityError:  # a concurrent insert of the same day (SQLite or PostgreSQL storage)
            if not all(instance.has_dynamic_partition(DAYS.name, d) for d in new):
                raise
    return new


def window_key(day: date | str, model: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DAY: str(day), MODEL: model})


def register_run_day(instance: dg.DagsterInstance, tags: dict, log=None) -> list[str]:
    """Register the day of a run's window (its ``dagster/partition`` tag "day|model"), if any.

    A run started by a partition tag (``dagster job execute --tags``, ``dg launch --partition``)
    may name a day the instance does not know: Dagster checks the key inside the window's
    first step, before any asset code runs, so the run's resources register it first.
    """
    key = tags.get("dagster/partition", "")
    if "|" not in key:  # not a window (a model's reference, or no partition)
        return []
    new = register_days(instance, [key.partition("|")[0]])
    if new and log is not None:
        log.info(f"registered window day {new[0]} (dynamic partitions {DAYS.name!r})")
    return new


def window_of(context) -> Window:
    """The window a partitioned step works on (keys from the UI or from a CLI tag)."""
    key = getattr(context, "op_execution_context", context).partition_key
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
    else:  # "2026-01-02|model": values in dimension-name order
        day, _, model = str(key).partition("|")
        dims = {DAY: day, MODEL: model}
    day = _day(dims[DAY])
    return Window(date.fromisoformat(day), dims[MODEL], f"{day}|{dims[MODEL]}")


def reference_mapping() -> dg.MultiToSingleDimensionPartitionMapping:
    return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=MODEL)
