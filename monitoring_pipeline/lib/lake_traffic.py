"""A lake window's traffic without its features: what the service and performance assets read.

A Parquet lake window's inputs are profiled shard by shard (:mod:`.lake`, ``defs/shard_assets.py``);
the window's other assets (service metrics and their SLOs, realized metrics, the candidate
comparison, the summary) need each row's prediction, label, latency and error, not its inputs. This
frame holds those columns for every row of the window, shadow rows included (the comparison pairs
a request's versions), in the shape of :func:`.sources.window_frame` without the feature columns,
and lean: ``request_id`` is the request's number in the window (equal ids, equal numbers: all that
deduplicating shadows and pairing versions ask of it), ``model_version`` and ``error`` are
categories. About 40 bytes a row (400 MB for 10M rows) instead of ~180 with the ids as text, and
nothing per feature; DuckDB reads it under a memory limit, spilling to a temporary directory.
Its memory still grows with the window's rows.
"""

from __future__ import annotations

import tempfile

import duckdb
import pandas as pd

from . import lake_files as files
from .lake import OPTIONAL, window_shards
from .monitors import Monitor
from .sources import Window, window_frame

COLUMNS = ("ts", "request_id", "model_version", "prediction", "confidence", "latency_ms", "error", "label")
DUCKDB_MEMORY = "512MB"  # DuckDB's share while it reads a window (its sort spills beyond it)
CHUNK_VECTORS = 100  # rows fetched at a time, in DuckDB vectors of 2,048


def is_lake(monitor: Monitor) -> bool:
    """Whether the monitor's traffic is a Parquet lake (profiled in shards)."""
    return monitor.traffic.source == "parquet"


def traffic_frame(monitor: Monitor, wh, window: Window) -> pd.DataFrame:
    """What ``traffic_window`` holds: a lake window's narrow frame, any other window whole."""
    return lake_traffic(monitor, window) if is_lake(monitor) else window_frame(monitor, wh, window)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c == "ts" else object) for c in COLUMNS})


def _select(monitor: Monitor, schema: dict) -> list[str]:
    """The narrow columns as SQL."""
    columns = [f"CAST({files.ts_sql(monitor, schema)} AS TIMESTAMP) AS ts"]
    if "request_id" in schema:
        columns.append("dense_rank() OVER (ORDER BY request_id) AS request_id")
    for name, kind in OPTIONAL.items():
        if name in ("model_version", "error"):
            columns.append(f"CAST(CAST({files.quote(name)} AS VARCHAR) AS {name}_values) AS {name}" if name in schema
                           else f"CAST(NULL AS VARCHAR) AS {name}")
        elif name != "request_id":
            columns.append(files.quote(name) if name in schema else f"CAST(NULL AS {kind}) AS {name}")
    for out, name in (("prediction", monitor.prediction_column), ("label", monitor.label_column)):
        columns.append(f"{files.quote(name)} AS {out}" if name in schema else f"CAST(NULL AS VARCHAR) AS {out}")
    return columns


def lake_traffic(monitor: Monitor, window) -> pd.DataFrame:
    """Every row of ``window`` (a :class:`.sources.Window`) in the monitor's lake, oldest first, with
    the columns of ``COLUMNS`` only: the monitor's prediction and label columns renamed, the optional
    ones NULL where the files lack them, and a request number per row (as a file source makes ids)
    when they have no ``request_id``. An empty frame for a window without shards."""
    shards = window_shards(monitor, window)
    if not shards:
        return _empty()
    paths, hive = sorted({f for s in shards for f in s.files}), shards[0].hive
    with tempfile.TemporaryDirectory(prefix="lake-traffic-") as spill:
        conn = duckdb.connect(config={"threads": 1, "memory_limit": DUCKDB_MEMORY, "temp_directory": spill})
        try:
            conn.execute("SET TimeZone = 'UTC'")
            schema = files.schema(monitor, paths, hive, conn)
            rows = f"FROM {files.scan(paths, hive)} WHERE {files.range_sql(monitor, schema)}"
            params = files.range_params(monitor, schema, window.start, window.end)
            for name in ("model_version", "error"):  # few distinct values: categories, not a string per row
                if name in schema:
                    column = files.quote(name)
                    files.run(conn, monitor, f"CREATE TYPE {name}_values AS ENUM (SELECT DISTINCT CAST({column} "
                                             f"AS VARCHAR) {rows} AND {column} IS NOT NULL)", params)
            select = ", ".join(_select(monitor, schema))
            result = files.run(conn, monitor, f"SELECT {select} {rows} ORDER BY ts", params)
            chunks = []
            while not (chunk := result.fetch_df_chunk(CHUNK_VECTORS)).empty:
                chunks.append(chunk)
        except duckdb.InvalidInputException as error:  # a file that changed or broke while it was read
            raise files.lake_error(monitor, error) from error
        finally:
            conn.close()
    if not chunks:
        return _empty()
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    del chunks
    if "request_id" not in schema:
        frame["request_id"] = range(1, len(frame) + 1)
    return frame[list(COLUMNS)]
