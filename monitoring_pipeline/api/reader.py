"""How routes read the warehouse: from a snapshot the API makes of it, so a read never waits on (or
blocks) a monitoring run that holds DuckDB's one-writer lock.

A snapshot is a DuckDB file of this process's own (a temporary folder per process: uvicorn may run
several workers) at this code's schema (``storage.schema.migrate``), holding a copy of every table of
the warehouse but the raw traffic (``inference_log``, ``labels``) and the stored profiles (artifacts of
kind 'profile'): they grow with every window and no read route needs them. The copy is one short read
transaction through this process's own DuckDB instance of the warehouse file, so it shares the file
with the API's own writes instead of conflicting with them; a run in another process that holds the
file makes it wait (up to ``settings.write_timeout``), never the reads.

- The first read makes the first snapshot; a run holding the warehouse past the deadline then gives
  ``Unavailable`` (503 with Retry-After), a missing warehouse file too.
- A read that finds the snapshot older than ``settings.snapshot_max_age`` and the warehouse changed
  since (size and mtime of its .duckdb and .wal files) starts one refresh in the background and is
  answered from the current snapshot meanwhile.
- A PostgreSQL warehouse (``settings.warehouse`` a ``postgresql://`` URL) is copied into the same
  kind of DuckDB snapshot by ``api.postgres_copy`` (one REPEATABLE READ transaction: runs never make
  it wait); whether it changed is asked of the server, in the background, at most once per
  ``snapshot_max_age`` (a connection costs milliseconds, a stat of a file microseconds).
- ``refresh()`` after the API's own write makes a new snapshot at once.

Routes take ``reader.warehouse()``, a read-only ``Warehouse`` on the current snapshot, so every
storage and lib read works unchanged; ``reader.as_of`` says when the snapshot's copy was read.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import duckdb
import pandas as pd
from fastapi import Response
from pydantic import AfterValidator, BaseModel

from monitoring_pipeline.storage import Warehouse, WarehouseError, open_warehouse
from monitoring_pipeline.storage.schema import LATEST, migrate
from monitoring_pipeline.storage.warehouse import _is_lock_error, is_url

from .errors import Unavailable
from .settings import ApiSettings

log = logging.getLogger(__name__)

SKIPPED_TABLES = ("inference_log", "labels", "schema_version")  # schema_version: the snapshot's own
ROW_FILTERS = {"artifacts": "kind <> 'profile'"}  # profiles are large and only runs read them
RETIRED_GRACE = 60.0  # seconds a replaced snapshot stays on disk for reads that started on it
CACHE_ENTRIES = 256  # computed answers kept per snapshot
_FOLDER_PREFIX = "monitoring-api-snapshots-"


@dataclass(frozen=True)
class Snapshot:
    path: Path
    generation: int
    as_of: datetime  # UTC, when the copy read the warehouse
    stamp: tuple  # the warehouse's files (size, mtime) when copied; PostgreSQL's transaction snapshot
    taken: float  # time.monotonic() of the copy


def _stat(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _remove_stale_folders(root: Path) -> None:
    """Snapshot folders of processes that are gone (killed before their shutdown cleaned up)."""
    for folder in root.glob(_FOLDER_PREFIX + "*"):
        match = re.match(re.escape(_FOLDER_PREFIX) + r"(\d+)-", folder.name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


class Reader:
    """The API's snapshots of ``settings.warehouse``; thread-safe (routes run in a thread pool)."""

    def __init__(self, settings: ApiSettings):
        self.settings = settings
        self.remote = is_url(str(settings.warehouse))  # PostgreSQL: asked over a connection, not stat()
        self.source = str(settings.warehouse) if self.remote else Path(settings.warehouse).resolve()
        self._lock = threading.Lock()  # guards the fields below
        self._making = threading.Lock()  # one snapshot made at a time
        self._current: Snapshot | None = None
        self._held: duckdb.DuckDBPyConnection | None = None  # keeps DuckDB's instance of the snapshot open
        self._retired: list[tuple[Path, float]] = []
        self._refreshing = False
        self._thread: threading.Thread | None = None  # the latest background refresh
        self._next_try = 0.0
        self._checked = 0.0  # time.monotonic() when the warehouse was last found unchanged since the snapshot
        self._failure: tuple[float, str] | None = None  # (monotonic, detail) of the last failed first snapshot
        self._folder: Path | None = None
        self._template: Path | None = None
        self._generation = 0
        self._cache: dict = {}

    # -- what routes call -------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current snapshot (the first one made now); starts a background refresh when it is
        older than ``snapshot_max_age`` and the warehouse changed since."""
        current = self._current
        if current is None:
            return self._first()
        if time.monotonic() - max(current.taken, self._checked) > self.settings.snapshot_max_age and (
                self.remote or self._stamp() != current.stamp):  # PostgreSQL's is asked in the background
            self._start_refresh()
        return current

    def warehouse(self) -> Warehouse:
        """A read-only ``Warehouse`` on the current snapshot."""
        return Warehouse(self.snapshot().path, timeout=self.settings.write_timeout, read_only=True)

    @property
    def as_of(self) -> datetime:
        """When the current snapshot read the warehouse (UTC)."""
        return self.snapshot().as_of

    def cached(self, key, compute: Callable[[Warehouse], object]):
        """``compute(warehouse)`` on the current snapshot, computed once per snapshot and ``key``
        (the answer of a read route; the caller must not mutate it). Returns ``(value, as_of)``."""
        return self._cached_on(self.snapshot(), key, compute)

    def rendered(self, key, build: Callable[[Warehouse, datetime], BaseModel]) -> Response:
        """A read route's whole answer: ``build(warehouse, as_of)`` (its response model) rendered to
        JSON once per snapshot and ``key``. Returning the bytes spares FastAPI validating and encoding
        the model again on every request, most of a cached read's time under load."""
        snap = self.snapshot()
        body, _ = self._cached_on(snap, ("rendered", key),
                                  lambda wh: build(wh, snap.as_of).model_dump_json().encode())
        return Response(body, media_type="application/json")

    def _cached_on(self, snap: Snapshot, key, compute: Callable[[Warehouse], object]):
        full = (snap.generation, key)
        if full in self._cache:
            return self._cache[full], snap.as_of
        value = compute(Warehouse(snap.path, timeout=self.settings.write_timeout, read_only=True))
        with self._lock:
            if self._current is snap and len(self._cache) < CACHE_ENTRIES:
                self._cache[full] = value
        return value, snap.as_of

    def refresh(self) -> None:
        """Make the next read see every write committed so far (a new snapshot, now)."""
        with self._making:
            self._make()

    def close(self) -> None:
        """Release the snapshot and delete this process's snapshot files (the app's shutdown)."""
        with self._making, self._lock:
            if self._held is not None:
                self._held.close()
            self._current, self._held, self._cache = None, None, {}
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = self._template = None

    # -- making snapshots -------------------------------------------------------------------------

    def _stamp(self) -> tuple:
        if self.remote:
            return self._on_postgres(lambda copier, wh: copier.stamp(wh), "cannot ask it whether it changed")
        return _stat(self.source), _stat(self.source.with_name(self.source.name + ".wal"))

    def _on_postgres(self, work, what: str):
        """``work(api.postgres_copy, the read-only PostgreSQL warehouse)``; a database error becomes a
        WarehouseError saying ``what`` failed (psycopg is imported only for PostgreSQL)."""
        import psycopg

        from . import postgres_copy

        try:
            return work(postgres_copy, open_warehouse(self.source, timeout=self.settings.write_timeout,
                                                      read_only=True))
        except (psycopg.Error, duckdb.Error) as error:
            raise WarehouseError(self.source, f"{what}: {error}") from error

    def _first(self) -> Snapshot:
        asked = time.monotonic()
        with self._making:
            if self._current is not None:
                return self._current
            if self._failure is not None and self._failure[0] > asked:  # it failed while this read waited
                raise Unavailable(self._failure[1], retry_after=self._retry_after())
            try:
                return self._make()
            except Unavailable as error:
                detail = f"{error.detail}; the API has no copy of it yet, retry shortly"
                self._failure = (time.monotonic(), detail)
                raise Unavailable(detail, retry_after=error.retry_after) from error

    def _retry_after(self) -> int:
        return max(1, round(self.settings.snapshot_max_age))

    def _start_refresh(self) -> None:
        with self._lock:
            if self._refreshing or time.monotonic() < self._next_try:
                return
            self._refreshing = True
        self._thread = threading.Thread(target=self._background, name="warehouse-snapshot", daemon=True)
        self._thread.start()

    def _background(self) -> None:
        try:
            with self._making:
                current = self._current
                if current is not None and self._stamp() != current.stamp:
                    self._make()
                elif current is not None:
                    self._checked = time.monotonic()
        except (Unavailable, WarehouseError) as error:  # reads go on from the current snapshot
            log.warning("the API's snapshot of the warehouse was not refreshed: %s", error)
            self._next_try = time.monotonic() + self.settings.snapshot_max_age
        finally:
            self._refreshing = False

    def _prepare(self) -> Path:
        """This process's folder and an empty snapshot at the latest schema to copy from."""
        if self._folder is None:
            root = Path(tempfile.gettempdir())
            _remove_stale_folders(root)
            self._folder = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-", dir=root))
        if self._template is None:
            template = self._folder / "empty.duckdb"
            conn = duckdb.connect(str(template))
            try:
                migrate(conn)
                conn.execute("CHECKPOINT")
            finally:
                conn.close()
            self._template = template
        return self._folder

    def _make(self) -> Snapshot:
        """Copy the warehouse into a new snapshot and make it current (caller holds ``_making``)."""
        folder = self._prepare()
        self._generation += 1
        path = folder / f"snapshot-{self._generation}.duckdb"
        shutil.copyfile(self._template, path)
        try:
            stamp, as_of = self._copy_into(path)
            held = duckdb.connect(str(path), read_only=True)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        snap = Snapshot(path, self._generation, as_of, stamp, time.monotonic())
        with self._lock:
            old, old_held = self._current, self._held
            self._current, self._held, self._cache = snap, held, {}
            self._failure = None
            if old is not None:
                self._retired.append((old.path, time.monotonic()))
        if old_held is not None:  # reads still on it keep DuckDB's instance open until they close
            old_held.close()
        self._sweep()
        return snap

    def _sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            gone = [p for p, at in self._retired if now - at > RETIRED_GRACE]
            self._retired = [(p, at) for p, at in self._retired if now - at <= RETIRED_GRACE]
        for path in gone:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".wal").unlink(missing_ok=True)

    def _open_source(self) -> duckdb.DuckDBPyConnection:
        """A connection to the warehouse through this process's DuckDB instance of it (shared with
        the API's own writes), waiting up to ``write_timeout`` for another process's lock."""
        if not self.source.exists():  # duckdb.connect would create it
            raise Unavailable(f"the warehouse {self.source} does not exist yet: a monitoring run creates it "
                              "(or set MONITORING_WAREHOUSE to an existing one)", retry_after=self._retry_after())
        deadline = time.monotonic() + self.settings.write_timeout
        pause = 0.02
        while True:
            try:
                return duckdb.connect(str(self.source))
            except duckdb.Error as error:
                if not _is_lock_error(error):
                    raise WarehouseError(self.source, str(error)) from error
                if time.monotonic() > deadline:
                    raise Unavailable(f"a monitoring run has held the warehouse for more than "
                                      f"{self.settings.write_timeout:g} s", retry_after=self._retry_after()) from error
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _copy_into(self, path: Path) -> tuple[tuple, datetime]:
        if self.remote:
            return self._copy_postgres(path)
        src = self._open_source()
        try:
            # One core for the copy: the API answers requests on the other while a run may hold one more.
            src.execute("SET threads = 1")
            stamp = self._stamp()  # before the copy: a write after it shows as a change
            source_db = src.execute("SELECT current_database()").fetchone()[0]
            src.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS api_snapshot")
            try:
                src.execute("BEGIN TRANSACTION")
                as_of = datetime.now(UTC)
                self._check_version(src, source_db)
                columns = self._columns(src, source_db)
                target = self._columns(src, "api_snapshot")
                for table, names in columns.items():
                    if table in SKIPPED_TABLES or table not in target:
                        continue
                    shared = ", ".join(_quote(c) for c in names if c in target[table])
                    where = f" WHERE {ROW_FILTERS[table]}" if table in ROW_FILTERS else ""
                    src.execute(f"INSERT INTO api_snapshot.main.{_quote(table)} ({shared}) "
                                f"SELECT {shared} FROM {_quote(source_db)}.main.{_quote(table)}{where}")
                src.execute("COMMIT")
            except BaseException:
                with suppress(duckdb.Error):  # the copy's own error is what matters
                    src.execute("ROLLBACK")
                raise
            finally:
                src.execute("DETACH api_snapshot")
        except duckdb.Error as error:
            raise WarehouseError(self.source, f"cannot copy it for the API: {error}") from error
        finally:
            src.close()
        return stamp, as_of

    def _copy_postgres(self, path: Path) -> tuple[tuple, datetime]:
        """The PostgreSQL warehouse's tables into the snapshot at ``path`` (its schema must be this
        code's: the read-only connection checks it)."""
        template = duckdb.connect(str(path), read_only=True)
        try:
            target = self._columns(template, template.execute("SELECT current_database()").fetchone()[0])
        finally:
            template.close()
        return self._on_postgres(lambda copier, wh: copier.copy_into(wh, path, target, SKIPPED_TABLES, ROW_FILTERS),
                                 "cannot copy it for the API")

    def _check_version(self, src: duckdb.DuckDBPyConnection, db: str) -> None:
        try:
            version = src.execute(f"SELECT max(version) FROM {_quote(db)}.main.schema_version").fetchone()[0]
        except duckdb.CatalogException as error:
            raise WarehouseError(self.source, "not a monitoring warehouse (it has no schema_version table)") from error
        if version is not None and version > LATEST:
            raise WarehouseError(self.source, f"schema version {version}, this code reads version {LATEST}; "
                                              "upgrade the code")

    @staticmethod
    def _columns(conn: duckdb.DuckDBPyConnection, db: str) -> dict[str, list[str]]:
        rows = conn.execute("""SELECT table_name, column_name FROM duckdb_columns()
                               WHERE database_name = ? AND schema_name = 'main'
                                 AND table_name IN (SELECT table_name FROM duckdb_tables()
                                                    WHERE database_name = ? AND schema_name = 'main')
                               ORDER BY table_name, column_index""", [db, db]).fetchall()
        out: dict[str, list[str]] = {}
        for table, column in rows:
            out.setdefault(table, []).append(column)
        return out


def plain(value):
    """``value`` as JSON-safe plain Python: NaN, inf, NaT and pandas' missing values as None,
    numpy scalars unwrapped, timestamps as ``datetime`` in UTC (in dicts and lists too)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or value is pd.NaT or (not isinstance(value, str) and pd.api.types.is_scalar(value)
                                            and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):  # the warehouse keeps UTC without a zone; JSON says so (RFC 3339)
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def as_utc(value: datetime) -> datetime:
    """A warehouse time (UTC without a zone) with its zone, as RFC 3339 wants it."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]  # a response field holding a warehouse time


def records(frame: pd.DataFrame) -> list[dict]:
    """A query's rows as plain dicts (:func:`plain`): a warehouse NULL, NaN or inf is None."""
    return [plain(row) for row in frame.to_dict("records")]
