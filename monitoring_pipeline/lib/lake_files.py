"""Reading a Parquet lake of traffic: its files, a window's shards, and the SQL that reads one.

The lake is a directory of hive-partitioned files (``model=<monitor>/day=YYYY-MM-DD/hour=HH/``,
every key optional) or a glob of Parquet files. ``model=`` and ``day=`` folders prune the files
of a window before any is opened; DuckDB then reads only the columns asked for, one thread, with
the window's time range pushed down to the row groups' statistics. See :mod:`.lake`.
"""

from __future__ import annotations

import glob
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd

from .monitors import Monitor

VECTOR = 2048  # rows of a DuckDB vector: what a chunk of a result is counted in
OPTIONAL = {"request_id": "VARCHAR", "model_version": "VARCHAR", "confidence": "DOUBLE", "latency_ms": "DOUBLE",
            "error": "VARCHAR"}  # read where the files have them, else NULL
HIVE_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
MAGIC = b"PAR1"
_LOCAL = threading.local()  # this thread's DuckDB connection (see connect)


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


def list_shards(monitor: Monitor, window) -> list[Shard]:
    """The shards of ``window`` in the monitor's lake: one per ``hour=`` folder, one per file of a
    hive lake without hours, one per hour of the timestamp in a plain glob (see :func:`.lake.window_shards`)."""
    files, hive = lake_files(monitor)
    keys = {f: folders(monitor, f) if hive else {} for f in files}
    files = [f for f in files if _in_window(monitor, window, keys[f])]
    if not files:
        return []
    check_parquet(monitor, files)
    columns = schema(monitor, files, hive)
    if hive and any("hour" in keys[f] for f in files):
        hours: dict[int, list[str]] = {}
        for f in files:
            hours.setdefault(_hour(monitor, f, keys[f]), []).append(f)
        return [Shard(f"hour={h:02d}", tuple(sorted(fs)), window.start, window.end, hive)
                for h, fs in sorted(hours.items())]
    if hive:
        return [Shard(os.path.relpath(f, root(monitor)), (f,), window.start, window.end, hive) for f in sorted(files)]
    sql = (f"SELECT hour(CAST({ts_sql(monitor, columns)} AS TIMESTAMP)) AS h FROM {scan(files, hive)} "
           f"WHERE {range_sql(monitor, columns)} GROUP BY h ORDER BY h")
    with connect() as conn:
        found = run(conn, monitor, sql, range_params(monitor, columns, window.start, window.end)).fetchall()
    return [Shard(f"hour={h:02d}", tuple(sorted(files)), window.start + timedelta(hours=int(h)),
                  window.start + timedelta(hours=int(h) + 1), hive) for (h,) in found]


def what(monitor: Monitor) -> str:
    return f"monitor {monitor.name!r}: traffic lake {monitor.traffic.path!r}"


def quote(identifier: str) -> str:
    """A SQL identifier from user data, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def root(monitor: Monitor) -> str:
    """The lake's directory: ``path`` itself, or a glob's folders before its first wildcard."""
    path = monitor.traffic.path
    if os.path.isdir(path):
        return os.path.abspath(path)
    parts = path.split(os.sep)
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts) - 1)
    return os.path.abspath(os.sep.join(parts[:fixed]) or ".")


def lake_files(monitor: Monitor) -> tuple[list[str], bool]:
    """Every file of the lake (absolute paths), and whether it is hive-partitioned (folders
    named key=value); ValueError for a lake that is missing or empty."""
    path = monitor.traffic.path
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(glob.escape(path), "**", "*.parquet"), recursive=True))
        if not files:
            raise ValueError(f"{what(monitor)} is empty: no *.parquet file under it")
    else:
        files = sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
        if not files:
            where = "matches no file" if glob.has_magic(path) else "does not exist"
            raise ValueError(f"{what(monitor)} {where}; give a directory of Parquet files or a glob such as "
                             "lake/**/*.parquet")
    files = [os.path.abspath(f) for f in files]
    return files, any(folders(monitor, f) for f in files)


def folders(monitor: Monitor, file: str) -> dict[str, str]:
    """The ``key=value`` folders of a file below the lake's directory."""
    parts = os.path.relpath(file, root(monitor)).split(os.sep)[:-1]
    return dict(m.groups() for part in parts if (m := HIVE_KEY.match(part)))


def _in_window(monitor: Monitor, window, keys: dict[str, str]) -> bool:
    if "model" in keys and keys["model"] != monitor.name:
        return False
    if "day" in keys:
        try:
            day = date.fromisoformat(keys["day"])
        except ValueError as error:
            raise ValueError(f"{what(monitor)}: folder day={keys['day']} is not a date like 2026-01-31") from error
        return day == window.day
    return True


def _hour(monitor: Monitor, file: str, keys: dict[str, str]) -> int:
    value = keys.get("hour")
    if value is None or not value.isdigit() or not 0 <= int(value) <= 23:
        raise ValueError(f"{what(monitor)}: {file} needs a folder hour=0..23 like its neighbours, "
                         f"has {'no hour' if value is None else 'hour=' + value}")
    return int(value)


def check_parquet(monitor: Monitor, files: Sequence[str]) -> None:
    """ValueError naming the first file that is not Parquet (no PAR1 at both ends)."""
    for f in files:
        with open(f, "rb") as handle:
            head = handle.read(4)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 4))
            tail = handle.read(4)
        if size < 12 or head != MAGIC or tail != MAGIC:
            raise ValueError(f"{what(monitor)}: {f} is not a Parquet file ({size} bytes"
                             f"{', empty' if size == 0 else ', no PAR1 magic bytes'})")


@contextmanager
def connect() -> Iterator[duckdb.DuckDBPyConnection]:
    """This thread's DuckDB connection, opened once per thread and process (opening one takes
    20-50 ms: a window's 24 shards would pay it 24 times): one DuckDB thread (shards run side by
    side in processes), times in UTC. A query run on it ends any result still being read on it."""
    if getattr(_LOCAL, "pid", None) != os.getpid():  # none yet, or the parent's in a forked worker
        _LOCAL.conn = duckdb.connect(config={"threads": 1})
        _LOCAL.conn.execute("SET TimeZone = 'UTC'")
        _LOCAL.pid = os.getpid()
    yield _LOCAL.conn


def release() -> None:
    """Close this thread's connection (a process about to fork must not hand a live DuckDB
    database to its children: a forked worker hung on one)."""
    if getattr(_LOCAL, "pid", None) == os.getpid():
        _LOCAL.conn.close()
    _LOCAL.pid = None


def lake_error(monitor: Monitor, error: duckdb.Error) -> ValueError:
    """DuckDB's error on a file that changed or broke after it was listed, as the ValueError naming
    the lake (raise it ``from error``)."""
    return ValueError(f"{what(monitor)}: {str(error).splitlines()[0]}")


def run(conn, monitor: Monitor, sql: str, params: list):
    try:
        return conn.execute(sql, params)
    except duckdb.InvalidInputException as error:
        raise lake_error(monitor, error) from error


def scan(files: Sequence[str], hive: bool) -> str:
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"read_parquet([{listed}], hive_partitioning = {'true' if hive else 'false'}, union_by_name = true)"


def schema(monitor: Monitor, files: Sequence[str], hive: bool, conn=None) -> dict[str, str]:
    """Column -> DuckDB type of the files (their union); ValueError when the timestamp or the
    prediction column is missing, or the timestamp holds no times."""
    if conn is None:
        with connect() as conn:
            return schema(monitor, files, hive, conn)
    rows = run(conn, monitor, f"DESCRIBE SELECT * FROM {scan(files, hive)}", []).fetchall()
    columns = {name: str(kind) for name, kind, *_ in rows}
    for role, column in (("ts_column", monitor.traffic.ts_column), ("prediction_column", monitor.prediction_column)):
        if column not in columns:
            raise ValueError(f"{what(monitor)} has no column {column!r} (the monitor's {role}); "
                             f"it has: {', '.join(columns)}")
    kind = columns[monitor.traffic.ts_column]
    if not (kind.startswith(("TIMESTAMP", "DATE")) or kind == "VARCHAR"):
        raise ValueError(f"{what(monitor)}: column {monitor.traffic.ts_column!r} holds {kind}, not timestamps")
    return columns


def ts_sql(monitor: Monitor, columns: dict) -> str:
    ts = quote(monitor.traffic.ts_column)
    return f"CAST({ts} AS TIMESTAMP)" if columns[monitor.traffic.ts_column] == "VARCHAR" else ts


def range_sql(monitor: Monitor, columns: dict) -> str:
    """The time filter on the column itself, so DuckDB skips row groups by their statistics."""
    ts = ts_sql(monitor, columns)
    return f"{ts} >= ? AND {ts} < ?"


def range_params(monitor: Monitor, columns: dict, start: datetime, end: datetime) -> list:
    """[start, end) as the column compares: UTC instants for a time zone-aware column."""
    if columns[monitor.traffic.ts_column] == "TIMESTAMP WITH TIME ZONE":
        return [start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)]
    return [start, end]


def mapped(monitor: Monitor) -> set[str]:
    """Columns that are not features: the timestamp, prediction, label and the optional ones."""
    return {monitor.traffic.ts_column, monitor.prediction_column, monitor.label_column, *OPTIONAL}


def projection(monitor: Monitor, columns: dict, features: Sequence[str]) -> list[str]:
    """The window's shape in SQL: ts, the optional columns (NULL where missing), prediction, label,
    then the features."""
    ts = quote(monitor.traffic.ts_column)
    cols = [f"{ts} AS ts" if columns[monitor.traffic.ts_column] == "TIMESTAMP" else f"CAST({ts} AS TIMESTAMP) AS ts"]
    for name, kind in OPTIONAL.items():
        cols.append(quote(name) if name in columns else f"CAST(NULL AS {kind}) AS {name}")
    for out, name in (("prediction", monitor.prediction_column), ("label", monitor.label_column)):
        cols.append(f"{quote(name)} AS {out}" if name in columns else f"CAST(NULL AS VARCHAR) AS {out}")
    return cols + [quote(f) for f in features if f not in ("ts", "prediction", "label", *OPTIONAL)]


def served_sql(monitor: Monitor, columns: dict, files, hive: bool, select: Sequence[str], start, end):
    """The rows of ``files`` in [start, end) that answered requests, as SQL and its parameters: a
    request answered by several versions keeps the serving version's row, ranked as
    :func:`.sources.served_rows` ranks them (the configured champion, versions other than the
    candidate, the version that answered more of these rows, then by name)."""
    where = f"FROM {scan(files, hive)} WHERE {range_sql(monitor, columns)}"
    params = range_params(monitor, columns, start, end)
    if "request_id" not in columns or "model_version" not in columns:
        return f"SELECT {', '.join(select)} {where}", params
    keys = '"request_id" AS __request, CAST("model_version" AS VARCHAR) AS __version'
    names = ", ".join(c if c.startswith('"') and c.endswith('"') else c.rsplit(" AS ", 1)[1] for c in select)
    sql = (f"WITH rows AS (SELECT {', '.join(select)}, {keys} {where}), ranked AS (SELECT *, count(*) OVER "
           "(PARTITION BY __version) AS __n, CASE WHEN __version = ? THEN 0 WHEN __version = ? THEN 2 ELSE 1 END "
           f"AS __rank FROM rows) SELECT {names} FROM ranked QUALIFY row_number() "
           "OVER (PARTITION BY __request ORDER BY __rank, __n DESC, __version) = 1")
    return sql, [*params, monitor.champion, monitor.candidate]


def batches(conn, monitor: Monitor, shard: Shard, columns: dict, features: Sequence[str],
            batch_rows: int | None) -> Iterator[pd.DataFrame]:
    """The shard's served rows, at most ``batch_rows`` at a time (all at once for None), as frames
    of the window's shape with ``features``."""
    sql, params = served_sql(monitor, columns, shard.files, shard.hive, projection(monitor, columns, features),
                             shard.start, shard.end)
    result = run(conn, monitor, sql, params)
    if batch_rows is None:
        yield result.df()
        return
    while not (chunk := result.fetch_df_chunk(max(1, batch_rows // VECTOR))).empty:
        for start in range(0, len(chunk), batch_rows):
            yield chunk.iloc[start:start + batch_rows]


def category_counts(conn, monitor: Monitor, shard: Shard, columns: dict, names: Sequence[str]) -> dict[str, tuple]:
    """Per column of ``names``: its values' counts over the shard's served rows, counted by DuckDB
    (one GROUP BY GROUPING SETS, no value leaves the database), and how many are NULL."""
    quoted = [quote(n) for n in names]
    sql, params = served_sql(monitor, columns, shard.files, shard.hive, quoted, shard.start, shard.end)
    flags = ", ".join(f"grouping({q})" for q in quoted)
    sets = ", ".join(f"({q})" for q in quoted)
    rows = run(conn, monitor, f"SELECT {flags}, {', '.join(quoted)}, count(*) FROM ({sql}) "
                              f"GROUP BY GROUPING SETS ({sets})", params).fetchall()
    out = {n: (Counter(), 0) for n in names}
    k = len(names)
    for row in rows:
        i = row[:k].index(0)  # the column this row groups by
        counts, missing = out[names[i]]
        value, n = row[k + i], int(row[-1])
        if value is None:
            out[names[i]] = (counts, missing + n)
        else:
            counts[value] += n
    return out
