"""Traffic as a Parquet lake, profiled in shards.

A monitor's traffic is a lake when monitors.yaml says ``traffic: {source: parquet, path: ...}``:
``path`` is a directory of hive-partitioned files (``model=<monitor>/day=YYYY-MM-DD/hour=HH/*.parquet``,
every key optional) or a glob of Parquet files. ``ts_column`` names the timestamp and the monitor's
``label_column`` and ``prediction_column`` the label and the prediction, as for file sources; the
columns ``request_id``, ``model_version``, ``confidence``, ``latency_ms`` and ``error`` are read
where the files have them. DuckDB reads the files in place, one thread, only the columns asked for,
with the window's time range pushed down to the row groups.

A window (a day x a model) is cut into shards: one per ``hour=`` partition of the day (the
``model=`` and ``day=`` keys prune the files), one per file in a hive lake without hours, one per
hour of the timestamp in a plain glob. A shard is profiled alone against the stored reference, in
batches of at most ``BATCH_ROWS`` rows (its memory is bounded whatever its size), and the shard
profiles merge into the window's (:func:`core.profiles.merge_profiles`: counts, sums and moments
exactly, percentiles within one bin). Dagster fans the shards out (``defs``); :func:`profile_window`
does the same in one call, with worker processes.

A request's shadow rows (one row per model version that answered it) must lie in one shard, as a
shadow call is logged at its request's time; the shard keeps the serving version's row, as
:func:`.sources.served_rows` does for a whole window.
"""

from __future__ import annotations

import glob
import os
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from multiprocessing import get_context

import duckdb
import numpy as np
import pandas as pd

from monitoring_pipeline.core import DatasetProfile, merge_profiles

from .monitors import Monitor

VECTOR = 2048  # rows of a DuckDB vector
BATCH_ROWS = VECTOR * 256  # rows profiled at once: a batch of 25 numeric columns is ~110 MB
OPTIONAL = {"request_id": "VARCHAR", "model_version": "VARCHAR", "confidence": "DOUBLE", "latency_ms": "DOUBLE",
            "error": "VARCHAR"}  # read where the files have them, else NULL
HIVE_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
MAGIC = b"PAR1"
NO_TRAFFIC = "the window has no traffic to profile"


@dataclass(frozen=True)
class Shard:
    """What one shard step reads: the rows of ``files`` whose timestamp is in [start, end).

    ``label`` names it for people and for Dagster (``hour=05``, a file's path in the lake);
    ``hive`` says whether the files' ``key=value`` folders are read as columns.
    """

    label: str
    files: tuple[str, ...]
    start: datetime
    end: datetime
    hive: bool = False


@dataclass(frozen=True)
class ShardProfile:
    """One shard profiled against the reference: what :func:`merge_shard_profiles` merges.

    ``inputs`` is None for a shard without rows in the window (an empty hour: recorded, not
    profiled); ``outputs`` is None when the monitor's version answered none of its requests or the
    reference has no outputs. ``versions`` counts served rows per model version; ``latency_ms``
    holds the served rows' known latencies (the service metrics' percentiles are exact).
    """

    label: str
    rows: int
    served: int
    inputs: DatasetProfile | None
    outputs: DatasetProfile | None
    versions: dict[str, int] = field(default_factory=dict)
    labeled: int = 0
    errors: int = 0
    latency_ms: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True)
class WindowProfile:
    """A window's profiles merged from its shards, and what the shards held.

    ``inputs`` is None when no shard had a row (``skipped`` then says so); ``empty_shards``
    names the shards that had none.
    """

    inputs: DatasetProfile | None
    outputs: DatasetProfile | None
    rows: int
    served: int
    versions: dict[str, int]
    labeled: int
    errors: int
    latency_ms: np.ndarray
    shards: tuple[str, ...]
    empty_shards: tuple[str, ...]

    @property
    def skipped(self) -> str | None:
        return NO_TRAFFIC if self.inputs is None else None

    def service(self) -> dict:
        """:func:`core.service.service_metrics` of the served rows, from the merged shards."""
        out = {"request_count": self.served, "error_rate": self.errors / self.served if self.served else None}
        for q in (50, 95, 99):
            out[f"latency_p{q}_ms"] = float(np.percentile(self.latency_ms, q)) if self.latency_ms.size else None
        return out


# --- the interface the Dagster fan-out calls ----------------------------------------------------


def window_shards(monitor: Monitor, window) -> list[Shard]:
    """The shards of ``window`` (a :class:`.sources.Window`) in the monitor's lake, in order.

    An empty list is a window without traffic (no file of that model and day, or no row in its
    time range): recorded as such, not an error. ValueError for a lake that is missing or holds
    no Parquet file, a file that is not Parquet, or a timestamp or prediction column the files lack.
    """
    files, hive = _lake_files(monitor)
    keys = _hive_keys(monitor, files, hive)
    files = [f for f in files if _in_window(monitor, window, keys[f])]
    if not files:
        return []
    _check_parquet(monitor, files)
    schema = _schema(monitor, files, hive)
    if hive and any("hour" in keys[f] for f in files):
        hours: dict[int, list[str]] = {}
        for f in files:
            hours.setdefault(_hour(monitor, f, keys[f]), []).append(f)
        return [Shard(f"hour={h:02d}", tuple(sorted(fs)), window.start, window.end, hive)
                for h, fs in sorted(hours.items())]
    if hive:
        root = _root(monitor)
        return [Shard(os.path.relpath(f, root), (f,), window.start, window.end, hive) for f in sorted(files)]
    sql = (f"SELECT hour(CAST({_ts(monitor, schema)} AS TIMESTAMP)) AS h FROM {_scan(files, hive)} "
           f"WHERE {_range(monitor, schema)} GROUP BY h ORDER BY h")
    with _connect() as conn:
        found = _run(conn, monitor, sql, _range_params(monitor, schema, window.start, window.end)).fetchall()
    hours = [int(h) for (h,) in found]
    return [Shard(f"hour={h:02d}", tuple(sorted(files)), window.start + timedelta(hours=h),
                  window.start + timedelta(hours=h + 1), hive) for h in hours]


def profile_shard(monitor: Monitor, shard: Shard, window, reference, features: Sequence[str], wh=None) -> ShardProfile:
    """Profile one shard of ``window`` against ``reference`` (a :class:`.references.Reference`).

    ``monitor`` is bound to the version that served the window (its ``champion``): its rows' outputs
    are profiled. ``features`` are the reference's features; those the files lack are left out (the
    drift report names them as missing columns). The shard is read in batches of ``BATCH_ROWS`` rows,
    each profiled and merged, so memory stays bounded. ``wh`` is needed only by monitors whose
    profiles go through their served model (vision nets, see :mod:`.model_views`).
    """
    from .references import window_profiles

    if shard.start < window.start or shard.end > window.end:
        raise ValueError(f"shard {shard.label} [{shard.start}, {shard.end}) is not in window {window.partition_key}")
    rows, parts = 0, []
    for batch, present in _batches(monitor, shard, features, BATCH_ROWS):
        rows += len(batch)
        served = batch  # shadow rows were dropped by the query
        inputs, outputs = window_profiles(wh, monitor, served, present, reference)
        latency = pd.to_numeric(served["latency_ms"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        errors = served["error"]
        logged = served["model_version"].notna().any()
        versions = served["model_version"].astype(str).value_counts().to_dict() if logged else {}
        parts.append(ShardProfile(
            shard.label, len(batch), len(served), inputs, outputs, {str(k): int(v) for k, v in versions.items()},
            int(served["label"].notna().sum()), int((errors.notna() & (errors.astype(str) != "")).sum()),
            latency[np.isfinite(latency)]))
    if not parts:
        return ShardProfile(shard.label, 0, 0, None, None)
    merged = reduce(_merge_two, parts)
    return ShardProfile(shard.label, rows, merged.served, merged.inputs, merged.outputs, merged.versions,
                        merged.labeled, merged.errors, merged.latency_ms)


def merge_shard_profiles(profiles: Sequence[ShardProfile]) -> WindowProfile:
    """The window's profile from its shards' (any order; merged in label order, so a rerun gives
    the same floats). No shard, or only empty ones: a window with no traffic (``skipped``)."""
    ordered = sorted(profiles, key=lambda p: p.label)
    full = [p for p in ordered if p.inputs is not None]
    merged = reduce(_merge_two, full) if full else ShardProfile("", 0, 0, None, None)
    return WindowProfile(merged.inputs, merged.outputs, sum(p.rows for p in ordered), merged.served, merged.versions,
                         merged.labeled, merged.errors, merged.latency_ms, tuple(p.label for p in ordered),
                         tuple(p.label for p in ordered if p.inputs is None))


def window_versions(monitor: Monitor, window) -> dict[str, int]:
    """Served rows per model version in the whole window, counted in DuckDB without reading the
    features: the version that served most is the one whose reference judges the window
    (:func:`.sources.primary_version`), chosen before the shards fan out. Empty when the lake has
    no ``model_version`` column or the window no rows."""
    shards = window_shards(monitor, window)
    files = sorted({f for s in shards for f in s.files})
    if not files:
        return {}
    hive = shards[0].hive
    schema = _schema(monitor, files, hive)
    if "model_version" not in schema:
        return {}
    served, params = _served_sql(monitor, schema, files, hive, ["model_version"], window.start, window.end)
    with _connect() as conn:
        found = _run(conn, monitor, f"SELECT CAST(model_version AS VARCHAR), count(*) FROM ({served}) GROUP BY 1",
                     params).fetchall()
    return {str(v): int(n) for v, n in found}


def profile_window(monitor: Monitor, window, reference, features: Sequence[str], *, workers: int = 1,
                   wh=None) -> WindowProfile:
    """Every shard of the window profiled (in ``workers`` processes) and merged: what the Dagster
    fan-out does, in one call. ``monitor`` is bound to the window's serving version."""
    shards = window_shards(monitor, window)
    if workers <= 1 or len(shards) <= 1:
        return merge_shard_profiles([profile_shard(monitor, s, window, reference, features, wh) for s in shards])
    if wh is not None:
        raise ValueError("profile_window with workers > 1 cannot pass a warehouse to its worker processes")
    with ProcessPoolExecutor(workers, mp_context=get_context("forkserver")) as pool:
        futures = [pool.submit(profile_shard, monitor, s, window, reference, features) for s in shards]
        return merge_shard_profiles([f.result() for f in futures])


def window_frame(monitor: Monitor, window) -> pd.DataFrame:
    """The whole window in one frame, the shape :func:`.sources.window_frame` gives (the unsharded
    path: memory grows with the window). Without a ``request_id`` column each row gets one."""
    shards = window_shards(monitor, window)
    schema = _schema(monitor, sorted({f for s in shards for f in s.files}), shards[0].hive) if shards else {}
    features = [c for c in schema if c not in _mapped(monitor) and c not in _hive_only(shards, schema)]
    frames = [batch for s in shards for batch, _ in _batches(monitor, s, features, None)]
    if not frames:
        frame = pd.DataFrame(columns=["ts", *OPTIONAL, "prediction", "label"])
    else:
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if "request_id" not in schema:
        frame["request_id"] = [f"{window.partition_key}-{i}" for i in range(len(frame))]
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


# --- reading ------------------------------------------------------------------------------------


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _what(monitor: Monitor) -> str:
    return f"monitor {monitor.name!r}: traffic lake {monitor.traffic.path!r}"


def _root(monitor: Monitor) -> str:
    """The lake's directory: ``path`` itself, or a glob's folders before its first wildcard."""
    path = monitor.traffic.path
    if os.path.isdir(path):
        return os.path.abspath(path)
    parts = path.split(os.sep)
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts) - 1)
    return os.path.abspath(os.sep.join(parts[:fixed]) or ".")


def _lake_files(monitor: Monitor) -> tuple[list[str], bool]:
    """Every file of the lake, and whether it is hive-partitioned (its folders named key=value)."""
    path = monitor.traffic.path
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(glob.escape(path), "**", "*.parquet"), recursive=True))
        if not files:
            raise ValueError(f"{_what(monitor)} is empty: no *.parquet file under it")
    else:
        files = sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
        if not files:
            where = "does not exist" if not any(c in path for c in "*?[") else "matches no file"
            raise ValueError(f"{_what(monitor)} {where}; give a directory of Parquet files or a glob such as "
                             "lake/**/*.parquet")
    files = [os.path.abspath(f) for f in files]
    return files, any(_folders(monitor, f) for f in files)


def _folders(monitor: Monitor, file: str) -> dict[str, str]:
    """The ``key=value`` folders of a file below the lake's directory."""
    parts = os.path.relpath(file, _root(monitor)).split(os.sep)[:-1]
    return dict(m.groups() for part in parts if (m := HIVE_KEY.match(part)))


def _hive_keys(monitor: Monitor, files: list[str], hive: bool) -> dict[str, dict[str, str]]:
    return {f: _folders(monitor, f) if hive else {} for f in files}


def _in_window(monitor: Monitor, window, keys: dict[str, str]) -> bool:
    if "model" in keys and keys["model"] != monitor.name:
        return False
    if "day" in keys:
        try:
            day = date.fromisoformat(keys["day"])
        except ValueError as error:
            raise ValueError(f"{_what(monitor)}: folder day={keys['day']} is not a date like 2026-01-31") from error
        return day == window.day
    return True


def _hour(monitor: Monitor, file: str, keys: dict[str, str]) -> int:
    value = keys.get("hour")
    if value is None or not value.isdigit() or not 0 <= int(value) <= 23:
        raise ValueError(f"{_what(monitor)}: {file} needs a folder hour=0..23 like its neighbours, "
                         f"has {'no hour' if value is None else 'hour=' + value}")
    return int(value)


def _check_parquet(monitor: Monitor, files: list[str]) -> None:
    """ValueError naming the first file that is not Parquet (no PAR1 at both ends)."""
    for f in files:
        with open(f, "rb") as handle:
            head = handle.read(4)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 4))
            tail = handle.read(4)
        if size < 12 or head != MAGIC or tail != MAGIC:
            raise ValueError(f"{_what(monitor)}: {f} is not a Parquet file ({size} bytes"
                             f"{', empty' if size == 0 else ', no PAR1 magic bytes'})")


def _connect() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(config={"threads": 1})
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def _run(conn, monitor: Monitor, sql: str, params: list):
    try:
        return conn.execute(sql, params)
    except duckdb.InvalidInputException as error:  # a file that changed or broke after it was listed
        raise ValueError(f"{_what(monitor)}: {str(error).splitlines()[0]}") from error


def _scan(files: Sequence[str], hive: bool) -> str:
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"read_parquet([{listed}], hive_partitioning = {'true' if hive else 'false'}, union_by_name = true)"


def _schema(monitor: Monitor, files: Sequence[str], hive: bool) -> dict[str, str]:
    """Column -> DuckDB type of the files (their union); ValueError when the timestamp or the
    prediction column is missing."""
    with _connect() as conn:
        rows = _run(conn, monitor, f"DESCRIBE SELECT * FROM {_scan(files, hive)}", []).fetchall()
    schema = {name: str(kind) for name, kind, *_ in rows}
    have = ", ".join(schema)
    for role, column in (("ts_column", monitor.traffic.ts_column), ("prediction_column", monitor.prediction_column)):
        if column not in schema:
            raise ValueError(f"{_what(monitor)} has no column {column!r} (the monitor's {role}); it has: {have}")
    kind = schema[monitor.traffic.ts_column]
    if not (kind.startswith(("TIMESTAMP", "DATE")) or kind == "VARCHAR"):
        raise ValueError(f"{_what(monitor)}: column {monitor.traffic.ts_column!r} holds {kind}, not timestamps")
    return schema


def _ts(monitor: Monitor, schema: dict) -> str:
    ts = _quote(monitor.traffic.ts_column)
    return f"CAST({ts} AS TIMESTAMP)" if schema[monitor.traffic.ts_column] == "VARCHAR" else ts


def _range(monitor: Monitor, schema: dict) -> str:
    """The window's time filter on the column itself (so DuckDB skips row groups by their statistics)."""
    ts = _ts(monitor, schema)
    return f"{ts} >= ? AND {ts} < ?"


def _range_params(monitor: Monitor, schema: dict, start: datetime, end: datetime) -> list:
    """[start, end) as the column compares: UTC instants for a time zone-aware column."""
    if schema[monitor.traffic.ts_column] == "TIMESTAMP WITH TIME ZONE":
        return [start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)]
    return [start, end]


def _mapped(monitor: Monitor) -> set[str]:
    return {monitor.traffic.ts_column, monitor.prediction_column, monitor.label_column, *OPTIONAL}


def _hive_only(shards: Sequence[Shard], schema: dict) -> set[str]:
    return {"model", "day", "hour"} & set(schema) if shards and shards[0].hive else set()


def _projection(monitor: Monitor, schema: dict, features: Sequence[str]) -> list[str]:
    ts_kind = schema[monitor.traffic.ts_column]
    ts = _quote(monitor.traffic.ts_column)
    cols = [f"CAST({ts} AS TIMESTAMP) AS ts" if ts_kind != "TIMESTAMP" else f"{ts} AS ts"]
    for name, kind in OPTIONAL.items():
        cols.append(_quote(name) if name in schema else f"CAST(NULL AS {kind}) AS {name}")
    for out, name in (("prediction", monitor.prediction_column), ("label", monitor.label_column)):
        cols.append(f"{_quote(name)} AS {out}" if name in schema else f"CAST(NULL AS VARCHAR) AS {out}")
    cols += [_quote(f) for f in features if f not in ("ts", "prediction", "label", *OPTIONAL)]
    return cols


def _served_sql(monitor: Monitor, schema: dict, files, hive: bool, columns: Sequence[str], start, end):
    """The rows of ``files`` in [start, end) that answered requests, as SQL and its parameters: a
    request answered by several versions keeps the serving version's row, ranked as
    :func:`.sources.served_rows` ranks them (the configured champion, versions other than the
    candidate, the version that answered more of these rows, then by name)."""
    where = f"FROM {_scan(files, hive)} WHERE {_range(monitor, schema)}"
    params = _range_params(monitor, schema, start, end)
    if "request_id" not in schema or "model_version" not in schema:
        return f"SELECT {', '.join(columns)} {where}", params
    keys = '"request_id" AS __request, CAST("model_version" AS VARCHAR) AS __version'
    sql = (f"WITH rows AS (SELECT {', '.join(columns)}, {keys} {where}), ranked AS (SELECT *, count(*) OVER "
           "(PARTITION BY __version) AS __n, CASE WHEN __version = ? THEN 0 WHEN __version = ? THEN 2 ELSE 1 END "
           f"AS __rank FROM rows) SELECT {', '.join(_alias(c) for c in columns)} FROM ranked QUALIFY row_number() "
           "OVER (PARTITION BY __request ORDER BY __rank, __n DESC, __version) = 1")
    return sql, [*params, monitor.champion, monitor.candidate]


def _alias(column_sql: str) -> str:
    """The name a projected column has in the query's result."""
    return column_sql.rsplit(" AS ", 1)[1] if " AS " in column_sql else column_sql


def _batches(monitor: Monitor, shard: Shard, features: Sequence[str], batch_rows: int | None):
    """The shard's served rows of the window, at most ``batch_rows`` at a time (all at once for
    None), as frames of the window's shape, with the features the files have."""
    if not shard.files:
        return
    schema = _schema(monitor, shard.files, shard.hive)
    present = [f for f in features if f in schema]
    if features and not present:
        raise ValueError(f"{_what(monitor)} has none of the features {', '.join(features)}; "
                         f"it has: {', '.join(schema)}")
    sql, params = _served_sql(monitor, schema, shard.files, shard.hive, _projection(monitor, schema, present),
                              shard.start, shard.end)
    with _connect() as conn:
        result = _run(conn, monitor, sql, params)
        if batch_rows is None:
            yield result.df(), present
            return
        while not (chunk := result.fetch_df_chunk(max(1, batch_rows // VECTOR))).empty:  # DuckDB hands out vectors
            for start in range(0, len(chunk), batch_rows):
                yield chunk.iloc[start:start + batch_rows], present


def _merge_two(a: ShardProfile, b: ShardProfile) -> ShardProfile:
    """Two non-empty shard profiles as one (outputs None on one side keep the other's)."""
    outputs = a.outputs if b.outputs is None else b.outputs if a.outputs is None else merge_profiles(a.outputs,
                                                                                                      b.outputs)
    versions = dict(Counter(a.versions) + Counter(b.versions))
    return ShardProfile(a.label, a.rows + b.rows, a.served + b.served, merge_profiles(a.inputs, b.inputs), outputs,
                        versions, a.labeled + b.labeled, a.errors + b.errors,
                        np.concatenate([a.latency_ms, b.latency_ms]))

