"""The warehouse: ``open_warehouse(target)`` gives PostgreSQL's for a ``postgresql://`` URL
(``storage/postgres.py``), else this module's DuckDB file. Both have ``connect()``, ``write(work)``,
``read(sql, params)``, ``dialect`` and ``name``, and raise ``WarehouseError``.

The DuckDB warehouse: short connections that wait for another process's lock.

DuckDB lets one process at a time open a database file for writing. Every read and
write here opens the file, does its work in one short transaction and closes it, and a
process that finds the file locked retries with growing pauses (up to ``timeout``
seconds), so concurrent runs take turns instead of failing or losing rows.

A file that cannot be used (missing where it must exist, not a DuckDB file, corrupt,
locked past the timeout, not writable) raises ``WarehouseError``, whose one-line message
names the path and the cause; the DuckDB error is chained to it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import duckdb

from .dialect import DUCKDB, is_conflict
from .schema import LATEST, migrate

_LOCK_MESSAGES = ("Could not set lock", "Conflicting lock", "database is locked")
# Errors about the file itself rather than the SQL; DuckDB raises its bare Error for a
# failed block checksum ("Corrupt database file").
_FILE_ERRORS = (duckdb.IOException, duckdb.FatalException, duckdb.InternalException, duckdb.PermissionException)
_migrated: set[Path] = set()
_migrate_guard = threading.Lock()


SCHEMES = ("postgresql://", "postgres://")


def is_url(target) -> bool:
    """Whether ``target`` names a PostgreSQL database (a ``postgresql://`` or ``postgres://`` URL)."""
    return isinstance(target, str) and target.lower().startswith(SCHEMES)


def redact(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class WarehouseError(Exception):
    """The warehouse cannot be used; ``str()`` is one line naming it (a path, or a URL without its
    password) and the cause. ``path`` is the DuckDB file's path (None for PostgreSQL)."""

    def __init__(self, target: Path | str, cause: str):
        self.name = redact(target) if is_url(target) else str(Path(target))
        self.path = None if is_url(target) else Path(target)
        self.cause = " ".join(cause.split())
        super().__init__(f"warehouse {self.name}: {self.cause}")


def open_warehouse(target: Path | str, **options):
    """The warehouse ``target`` names: a ``postgresql://`` (or ``postgres://``) URL gives a
    ``PostgresWarehouse``, anything else is a DuckDB file's path. ``options`` (timeout, read_only,
    create) mean the same for both."""
    if is_url(target):
        from .postgres import PostgresWarehouse  # psycopg is imported only for PostgreSQL

        return PostgresWarehouse(target, **options)
    return Warehouse(target, **options)


def _is_lock_error(error: Exception) -> bool:
    return isinstance(error, duckdb.IOException) and any(m in str(error) for m in _LOCK_MESSAGES)


_is_conflict = is_conflict  # the name spool.py and others imported


def _is_file_error(error: BaseException) -> bool:
    return isinstance(error, _FILE_ERRORS) or type(error) is duckdb.Error


def in_transaction(conn, work, rollback_errors: type[BaseException]):
    """``work(conn)`` in one transaction on ``conn`` (DuckDB's or :mod:`.postgres`'s): committed
    when it returns, rolled back when anything escapes it, a ``KeyboardInterrupt`` included. A
    rollback that fails with ``rollback_errors`` is passed over: the error that stopped the work
    is the one raised."""
    conn.execute("BEGIN TRANSACTION")
    try:
        result = work(conn)
        conn.execute("COMMIT")
        return result
    except BaseException:
        with suppress(rollback_errors):
            conn.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class Warehouse:
    """A DuckDB file, created and migrated on first use.

    ``read_only`` opens it for reading only (never created, never migrated: its schema
    must be this code's); ``create=False`` makes a missing file an error instead of a
    new empty warehouse.
    """

    path: Path
    timeout: float = 120.0
    read_only: bool = False
    create: bool = True
    dialect: ClassVar[str] = DUCKDB
    url: ClassVar[None] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).resolve())

    @property
    def name(self) -> str:
        return str(self.path)

    def _open(self) -> duckdb.DuckDBPyConnection:
        if not self.path.exists():
            if self.read_only or not self.create:
                raise WarehouseError(self.path, "no such file")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise WarehouseError(self.path, f"cannot create its folder: {error.strerror}") from error
        deadline = time.monotonic() + self.timeout
        pause = 0.02
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.Error as error:
                if not _is_lock_error(error):
                    raise WarehouseError(self.path, str(error)) from error
                if time.monotonic() > deadline:
                    raise WarehouseError(self.path, f"locked by another process for {self.timeout:g} s: "
                                                    f"{error}") from error
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 1.0)

    def _check_schema(self, conn: duckdb.DuckDBPyConnection) -> None:
        """A read-only connection cannot migrate: the file must be at this code's schema."""
        try:
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        except duckdb.CatalogException as error:
            raise WarehouseError(self.path, "not a monitoring warehouse (it has no schema_version table)") from error
        if version != LATEST:
            raise WarehouseError(self.path, f"schema version {version}, this code reads version {LATEST}"
                                 + ("; any job, or `monitoring-pipeline migrate`, migrates it" if version < LATEST
                                    else "; upgrade the code"))

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the migrated warehouse (checked, if read-only), closed on exit."""
        conn = self._open()
        try:
            try:
                if self.read_only:
                    self._check_schema(conn)
                elif self.path not in _migrated:
                    with _migrate_guard:
                        migrate(conn)
                        _migrated.add(self.path)
            except duckdb.Error as error:
                raise WarehouseError(self.path, str(error)) from error
            try:
                yield conn
            except duckdb.Error as error:
                if _is_file_error(error):
                    raise WarehouseError(self.path, str(error)) from error
                raise
        finally:
            conn.close()

    def write(self, work) -> object:
        """Run ``work(conn)`` in one transaction; retried whole if another writer conflicts."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with self.connect() as conn:
                    return in_transaction(conn, work, duckdb.Error)
            except duckdb.TransactionException as error:
                if not _is_conflict(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05 + random.random() * 0.2)

    def read(self, sql: str, params: list | None = None):
        """A query's rows as a pandas DataFrame."""
        with self.connect() as conn:
            return conn.execute(sql, params or []).df()
