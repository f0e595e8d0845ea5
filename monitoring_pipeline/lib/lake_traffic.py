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
from datetime import timezone

import duckdb
import pandas as pd

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


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c == "ts" else object) for c in COLUMNS})


def _select(monitor: Monitor, schema: dict) -> tuple[list[str], str]:
    """The narrow columns as SQL, and the time column as the window's filter compares it."""
    ts = _quote(monitor.traffic.ts_column)
    if not schema[monitor.traffic.ts_column].startswith("TIMESTAMP"):  # window_shards checked it is there
        ts = f"CAST({ts} AS TIMESTAMP)"
    columns = [f"CAST({ts} AS TIMESTAMP) AS ts"]
    if "request_id" in schema:
        columns.append("dense_rank() OVER (ORDER BY request_id) AS request_id")
    for name, kind in OPTIONAL.items():
        if name in ("model_version", "error"):
            columns.append(f"CAST(CAST({_quote(name)} AS VARCHAR) AS {name}_values) AS {name}" if name in schema
                           else f"CAST(NULL AS VARCHAR) AS {name}")
        elif name != "request_id":
            columns.append(_quote(name) if name in schema else f"CAST(NULL AS {kind}) AS {name}")
    for out, name in (("prediction", monitor.prediction_column), ("label", monitor.label_column)):
        columns.append(f"{_quote(name)} AS {out}" if name in schema else f"CAST(NULL AS VARCHAR) AS {out}")
    return columns, ts


def lake_traffic(monitor: Monitor, window) -> pd.DataFrame:
    """Every row of ``window`` (a :class:`.sources.Window`) in the monitor's lake, oldest first, with
    the columns of ``COLUMNS`` only: the monitor's prediction and label columns renamed, the optional
    ones NULL where the files lack them, and a request number per row (as a file source makes ids)
    when they have no ``request_id``. An empty frame for a window without shards."""
    shards = window_shards(monitor, window)
    if not shards:
        return _empty()
    files = sorted({f for s in shards for f in s.files})
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    scan = f"read_parquet([{listed}], hive_partitioning = {'true' if shards[0].hive else 'false'}, union_by_name = true)"
    with tempfile.TemporaryDirectory(prefix="lake-traffic-") as spill:
        conn = duckdb.connect(config={"threads": 1, "memory_limit": DUCKDB_MEMORY, "temp_directory": spill})
        try:
            conn.execute("SET TimeZone = 'UTC'")
            schema = {name: str(kind) for name, kind, *_ in conn.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
            columns, ts = _select(monitor, schema)
            start, end = window.start, window.end
            if schema[monitor.traffic.ts_column].startswith("TIMESTAMP WITH TIME ZONE"):  # compared in UTC
                start, end = start.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc)
            rows = f"FROM {scan} WHERE {ts} >= ? AND {ts} < ?"
            for name in ("model_version", "error"):  # few distinct values: categories, not a string per row
                if name in schema:
                    conn.execute(f"CREATE TYPE {name}_values AS ENUM (SELECT DISTINCT CAST({_quote(name)} AS VARCHAR) "
                                 f"{rows} AND {_quote(name)} IS NOT NULL)", [start, end])
            result = conn.execute(f"SELECT {', '.join(columns)} {rows} ORDER BY ts", [start, end])
            chunks = []
            while not (chunk := result.fetch_df_chunk(CHUNK_VECTORS)).empty:
                chunks.append(chunk)
        except duckdb.InvalidInputException as error:  # a file that changed or broke after it was listed
            raise ValueError(f"monitor {monitor.name!r}: traffic lake {monitor.traffic.path!r}: "
                             f"{str(error).splitlines()[0]}") from error
        finally:
            conn.close()
    if not chunks:
        return _empty()
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    del chunks
    if "request_id" not in schema:
        frame["request_id"] = range(1, len(frame) + 1)
    return frame[list(COLUMNS)]
