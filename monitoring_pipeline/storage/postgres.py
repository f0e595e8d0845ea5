"""The warehouse on PostgreSQL: the same calls as the DuckDB warehouse, over psycopg.

``PostgresWarehouse(url)`` has DuckDB's ``Warehouse`` interface (``connect``, ``write``,
``read``), and its connections answer the calls the storage code makes of a DuckDB one:
``execute(sql, params)`` with ``?`` placeholders, ``executemany``, ``fetchone`` / ``fetchall``
/ ``df`` / ``description``, ``register(name, frame)`` (a temporary table filled by COPY) and
``unregister``. Values come back as DuckDB gives them (``storage/dialect.py`` lists what is
absorbed here). Parameters are bound on the client (psycopg's ClientCursor, quoted by libpq),
so a parameter's type comes from its place in the query as in DuckDB (``? IS NULL`` works).

The psycopg connection is in autocommit mode: the ``BEGIN TRANSACTION`` / ``COMMIT`` /
``ROLLBACK`` the storage code issues drive its transactions, which are SERIALIZABLE. ``write``
retries a transaction that lost a serialization conflict, whole, as DuckDB's conflicts are.
A connection is opened per ``connect()`` (a few milliseconds to a local server).

A warehouse that cannot be used (server down, bad URL, authentication refused, no such
database, not a monitoring database when read-only) raises ``WarehouseError`` naming the URL
without its password.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import psycopg
from psycopg.adapt import Loader
from psycopg.types.string import TextLoader

from .dialect import POSTGRES, is_conflict, placeholders
from .schema import LATEST, migrate
from .warehouse import WarehouseError, in_transaction, redact

_migrated: set[str] = set()
_migrate_guard = threading.Lock()
_UNIQUE_RETRIES = 3  # a concurrent insert of the same key: the retry sees it (a real duplicate fails again)
_STRING = pd.StringDtype("python", na_value=np.nan)  # what DuckDB's df() gives for VARCHAR and JSON
# type OIDs (pg_type) -> how df() builds the column, as DuckDB's df() would
_INTS = {21: ("int16", "Int16"), 23: ("int32", "Int32"), 20: ("int64", "Int64")}
_FLOATS = {700, 701, 1700}
_TEXTS = {25, 1043, 1042, 19, 114, 3802, 2950}
_TIMESTAMP, _TIMESTAMPTZ, _DATE, _BOOL = 1114, 1184, 1082, 16
_VALUES = re.compile(r"(?P<head>\s*INSERT\s.*?\bVALUES\s*)(?P<row>\(.*\))\s*$", re.IGNORECASE | re.DOTALL)
_BATCH = 1000


def _one_row_insert(query: str) -> tuple[str, str] | None:
    """(the text up to VALUES, the row) of an INSERT whose VALUES is one parenthesized row that ends
    the statement (executemany sends many such rows in one statement); None for anything else."""
    found = _VALUES.match(query)
    if not found or "'" in found["row"] or '"' in found["row"]:
        return None
    depth = 0
    for i, char in enumerate(found["row"]):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and i < len(found["row"]) - 1:  # the first group closes before the end: not one row
            return None
    return found["head"], found["row"]


class _NumericLoader(Loader):
    """NUMERIC (what PostgreSQL's sum of bigints and avg of integers give) as a Python number: an
    int when it has no fraction digits, else a float, as DuckDB's HUGEINT and DOUBLE come back."""

    def load(self, data):
        text = bytes(data).decode()
        return float(text) if any(c in text for c in ".eEN") else int(text)


def local_timezone() -> str:
    """The process's local time zone, as PostgreSQL's TimeZone setting names it (what DuckDB uses to
    turn current_timestamp into a TIMESTAMP): $TZ, else /etc/localtime's zone, else its UTC offset."""
    if os.environ.get("TZ"):
        return os.environ["TZ"].lstrip(":")
    with suppress(OSError):
        target = os.path.realpath("/etc/localtime")
        if "/zoneinfo/" in target:
            return target.split("/zoneinfo/", 1)[1]
    minutes = int(datetime.now().astimezone().utcoffset().total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    # POSIX zones count hours west of Greenwich: the sign is the opposite of ISO 8601's
    return f"<{sign}{hours:02d}{rest:02d}>{'-' if minutes >= 0 else '+'}{hours:02d}:{rest:02d}"


def _pandas_zone(zone: str):
    """``zone`` as pandas takes it; a POSIX zone string (local_timezone's last resort) as the local offset."""
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return datetime.now().astimezone().tzinfo


def _param(value):
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NaT:
        return None
    return value


def _column(values: list, oid: int, zone: str) -> pd.Series:
    """One result column as DuckDB's df() types it (an integer or boolean column with NULLs is a
    pandas nullable one; DATE is a datetime64; JSON and text are strings)."""
    missing = any(v is None for v in values)
    if oid in _INTS:
        return pd.Series(values, dtype=_INTS[oid][1] if missing else _INTS[oid][0])
    if oid in _FLOATS:
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    if oid == _BOOL:
        return pd.Series(values, dtype="boolean" if missing else "bool")
    if oid in _TEXTS:  # DuckDB: strings, or objects (None) when the column holds no string at all
        return pd.Series(values, dtype=_STRING if any(v is not None for v in values) else object)
    if oid in (_TIMESTAMP, _DATE):
        return pd.Series(values, dtype="datetime64[us]")
    if oid == _TIMESTAMPTZ:
        return pd.Series([None if v is None else v.astimezone(timezone.utc).replace(tzinfo=None) for v in values],
                         dtype="datetime64[us]").dt.tz_localize("UTC").dt.tz_convert(_pandas_zone(zone))
    return pd.Series(values, dtype=object)


class PostgresResult:
    """What ``execute`` returns: the statement's rows; a DML statement without RETURNING has one
    row holding the number of rows it changed (DuckDB's ``Count``)."""

    def __init__(self, cursor: psycopg.ClientCursor, zone: str):
        self._zone = zone
        if cursor.description is not None:
            self.description = cursor.description
            self._rows = cursor.fetchall()
        elif cursor.statusmessage and cursor.statusmessage.split()[0] in ("INSERT", "UPDATE", "DELETE", "MERGE"):
            self.description = [("Count", 20, None, None, None, None, None)]
            self._rows = [(cursor.rowcount,)]
        else:
            self.description, self._rows = None, []
        self._next = 0

    def fetchone(self):
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        rows, self._next = self._rows[self._next:], len(self._rows)
        return rows

    def df(self) -> pd.DataFrame:
        if self.description is None:
            return pd.DataFrame()
        rows = self.fetchall()
        columns = {i: _column([r[i] for r in rows], d[1], self._zone) for i, d in enumerate(self.description)}
        frame = pd.DataFrame(columns)
        frame.columns = [d[0] for d in self.description]
        return frame

    fetchdf = df


def _register_type(series: pd.Series) -> str:
    kind = series.dtype.kind
    if kind == "b" or str(series.dtype) == "boolean":
        return "BOOLEAN"
    if kind in "iu":
        return "BIGINT"
    if kind == "f":
        return "DOUBLE PRECISION"
    if kind == "M":
        return "TIMESTAMPTZ" if getattr(series.dtype, "tz", None) is not None else "TIMESTAMP"
    values = series.dropna()
    if all(isinstance(v, str) for v in values):
        return "TEXT"
    raise ValueError(f"column {series.name!r} holds {type(values.iloc[0]).__name__} values; a registered frame's "
                     "columns must be numbers, booleans, times or text")


def _quote(identifier: str) -> str:
    return '"' + str(identifier).replace('"', '""') + '"'


class PostgresConnection:
    """A psycopg connection answering the DuckDB connection calls the storage code makes."""

    dialect: ClassVar[str] = POSTGRES

    def __init__(self, raw: psycopg.Connection, zone: str):
        self._raw, self._zone = raw, zone
        self._last: PostgresResult | None = None

    def execute(self, sql: str, params=None) -> PostgresResult:
        with self._raw.cursor() as cursor:
            cursor.execute(placeholders(sql), [_param(p) for p in params or []])
            self._last = PostgresResult(cursor, self._zone)
        return self._last

    def executemany(self, sql: str, rows) -> PostgresConnection:
        """``sql`` once per row. An ``INSERT ... VALUES (?, ...)`` is sent as multi-row VALUES,
        ``_BATCH`` rows a statement; anything else one statement a row. (Not psycopg's executemany:
        its pipeline, aborted by a serialization failure that ``write`` retries, logs a warning.)"""
        rows = [[_param(p) for p in row] for row in rows]
        query = placeholders(sql)
        values = _one_row_insert(query)
        with self._raw.cursor() as cursor:
            if values:
                head, one = values
                for start in range(0, len(rows), _BATCH):
                    chunk = rows[start:start + _BATCH]
                    cursor.execute(head + ", ".join([one] * len(chunk)), [v for row in chunk for v in row])
            else:
                for row in rows:
                    cursor.execute(query, row)
        self._last = None
        return self

    def fetchone(self):
        return self._last.fetchone() if self._last else None

    def fetchall(self) -> list[tuple]:
        return self._last.fetchall() if self._last else []

    def df(self) -> pd.DataFrame:
        return self._last.df() if self._last else pd.DataFrame()

    def register(self, name: str, frame: pd.DataFrame) -> PostgresConnection:
        """``frame`` as a temporary table ``name`` (replacing one of that name), filled by COPY; as in
        DuckDB, NaN and NaT are NULL. It is ANALYZEd: autovacuum never analyzes a temporary table, and
        a planner that takes it for an empty one picks nested loops over the tables it is joined to."""
        columns = [(str(c), _register_type(frame[c])) for c in frame.columns]
        self.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
        self.execute(f"CREATE TEMPORARY TABLE {_quote(name)} ({', '.join(f'{_quote(c)} {t}' for c, t in columns)})")
        values = frame.astype(object).where(frame.notna(), None)
        with self._raw.cursor() as cursor, cursor.copy(
                f"COPY {_quote(name)} ({', '.join(_quote(c) for c, _ in columns)}) FROM STDIN") as copy:
            for row in values.itertuples(index=False, name=None):
                copy.write_row([_param(v) for v in row])
        self.execute(f"ANALYZE {_quote(name)}")
        return self

    def unregister(self, name: str) -> PostgresConnection:
        self.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
        return self

    def close(self) -> None:
        self._raw.close()


@dataclass(frozen=True)
class PostgresWarehouse:
    """A PostgreSQL database as the warehouse, migrated on first use.

    ``read_only`` connections cannot write (the database must be at this code's schema; it is
    checked, never migrated). The database must exist (it is never created: ``create`` is DuckDB's
    option, kept for the same calls; an empty database is migrated, as ``monitoring-pipeline
    migrate`` does to a new one). ``timeout`` bounds the retries of conflicting writes and the
    wait for another transaction's locks.
    """

    url: str
    timeout: float = 120.0
    read_only: bool = False
    create: bool = True
    zone: str = field(default_factory=local_timezone)
    dialect: ClassVar[str] = POSTGRES
    path: ClassVar[None] = None

    @property
    def name(self) -> str:
        return redact(self.url)

    def _error(self, error: BaseException, what: str | None = None) -> WarehouseError:
        text = what or str(error)
        with suppress(psycopg.Error):  # a URL libpq cannot parse has no password to hide
            password = psycopg.conninfo.conninfo_to_dict(self.url).get("password")
            if password:
                text = text.replace(str(password), "***")
        return WarehouseError(self.name, text)

    def _open(self) -> PostgresConnection:
        options = [f"TimeZone={self.zone}", "DateStyle=ISO", "IntervalStyle=iso_8601",
                   "default_transaction_isolation=serializable", f"lock_timeout={int(self.timeout * 1000)}",
                   "client_min_messages=warning"]
        if self.read_only:
            options.append("default_transaction_read_only=on")
        try:
            raw = psycopg.connect(self.url, autocommit=True, cursor_factory=psycopg.ClientCursor,
                                  options=" ".join("-c " + o.replace(" ", "\\ ") for o in options),
                                  connect_timeout=max(2, int(min(self.timeout, 30))),
                                  application_name="monitoring_pipeline")
        except psycopg.Error as error:
            raise self._error(error, " ".join(str(error).split())) from error
        for name in ("json", "jsonb"):  # as DuckDB gives JSON: the text
            raw.adapters.register_loader(name, TextLoader)
        raw.adapters.register_loader("numeric", _NumericLoader)
        return PostgresConnection(raw, self.zone)

    def _check_schema(self, conn: PostgresConnection) -> None:
        """A read-only connection cannot migrate: the database must be at this code's schema."""
        try:
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        except psycopg.errors.UndefinedTable as error:
            raise self._error(error, "not a monitoring warehouse (it has no schema_version table)") from error
        if version != LATEST:
            raise WarehouseError(self.name, f"schema version {version}, this code reads version {LATEST}"
                                 + ("; any job, or `monitoring-pipeline migrate`, migrates it" if version < LATEST
                                    else "; upgrade the code"))

    @contextmanager
    def connect(self) -> Iterator[PostgresConnection]:
        """A connection to the migrated warehouse (checked, if read-only), closed on exit."""
        conn = self._open()
        try:
            try:
                if self.read_only:
                    self._check_schema(conn)
                elif self.url not in _migrated:
                    with _migrate_guard:
                        migrate(conn)
                        _migrated.add(self.url)
            except psycopg.Error as error:
                raise self._error(error) from error
            try:
                yield conn
            except psycopg.OperationalError as error:
                if error.sqlstate in (None, "55P03") or error.sqlstate[:2] in ("08", "57"):
                    raise self._error(error, ("locked by another transaction for "
                                              f"{self.timeout:g} s: " if error.sqlstate == "55P03" else "")
                                      + " ".join(str(error).split())) from error
                raise
        finally:
            conn.close()

    def write(self, work) -> object:
        """Run ``work(conn)`` in one transaction; retried whole when it loses a conflict with
        another writer (a serialization failure, a deadlock, or a key another writer inserted first)."""
        deadline = time.monotonic() + self.timeout
        unique_retries = 0
        while True:
            try:
                with self.connect() as conn:
                    return in_transaction(conn, work, psycopg.Error)
            except psycopg.errors.UniqueViolation:
                unique_retries += 1
                if unique_retries > _UNIQUE_RETRIES or time.monotonic() > deadline:
                    raise
            except psycopg.Error as error:
                if not is_conflict(error) or time.monotonic() > deadline:
                    raise
            time.sleep(0.02 + random.random() * 0.1)

    def read(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """A query's rows as a pandas DataFrame, typed as DuckDB's df() types them."""
        with self.connect() as conn:
            return conn.execute(sql, params or []).df()
