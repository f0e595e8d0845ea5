"""Partitions: a daily window x a monitored model for traffic, the model alone for references."""

from datetime import date

import dagster as dg

from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.sources import Window

DAY, MODEL = "day", "model"


def model_partitions(config: MonitorsConfig) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(config.names)


def window_partitions(config: MonitorsConfig) -> dg.MultiPartitionsDefinition:
    # end_offset=1 includes today, so the 6-hourly drift check sees the day so far.
    return dg.MultiPartitionsDefinition({
        DAY: dg.DailyPartitionsDefinition(start_date=config.start_date, end_offset=1),
        MODEL: model_partitions(config),
    })


def window_key(day: date | str, model: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DAY: str(day), MODEL: model})


def window_of(context) -> Window:
    """The window a partitioned step works on (keys from the UI or from a CLI tag)."""
    key = getattr(context, "op_execution_context", context).partition_key
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
    else:  # "2026-01-02|model": values in dimension-name order
        day, model = str(key).split("|", 1)
        dims = {DAY: day, MODEL: model}
    return Window(date.fromisoformat(dims[DAY]), dims[MODEL], f"{dims[DAY]}|{dims[MODEL]}")


def reference_mapping() -> dg.MultiToSingleDimensionPartitionMapping:
    return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=MODEL)
