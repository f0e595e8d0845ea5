"""The DuckDB warehouse: short connections that wait for another process's lock.

DuckDB lets one process at a time open a database file. Every read and write here
opens the file, does its work in one short transaction and closes it, and a process
that finds the file locked retries with growing pauses (up to ``timeout`` seconds),
so concurrent runs take turns instead of failing or losing rows.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .schema import migrate

_LOCK_MESSAGES = ("Could not set lock", "Conflicting lock", "database is locked")
_migrated: set[Path] = set()
_migrate_guard = threading.Lock()


def _is_lock_error(error: Exception) -> bool:
    return isinstance(error, duckdb.IOException) and any(m in str(error) for m in _LOCK_MESSAGES)


def _is_conflict(error: Exception) -> bool:
    return isinstance(error, duckdb.TransactionException) and "conflict" in str(error).lower()


@dataclass(frozen=True)
class Warehouse:
    """A DuckDB file, created and migrated on first use."""

    path: Path
    timeout: float = 120.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).resolve())

    def _open(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        pause = 0.02
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as error:
                if not _is_lock_error(error) or time.monotonic() > deadline:
                    raise
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 1.0)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the migrated warehouse, closed on exit."""
        conn = self._open()
        try:
            if self.path not in _migrated:
                with _migrate_guard:
                    migrate(conn)
                    _migrated.add(self.path)
            yield conn
        finally:
            conn.close()

    def write(self, work) -> object:
        """Run ``work(conn)`` in one transaction; retried whole if another writer conflicts."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with self.connect() as conn:
                    conn.execute("BEGIN TRANSACTION")
                    try:
                        result = work(conn)
                        conn.execute("COMMIT")
                        return result
                    except BaseException:
                        with suppress(duckdb.Error):  # the original error is what matters
                            conn.execute("ROLLBACK")
                        raise
            except (duckdb.IOException, duckdb.TransactionException) as error:
                if not (_is_lock_error(error) or _is_conflict(error)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05 + random.random() * 0.2)

    def read(self, sql: str, params: list | None = None):
        """A query's rows as a pandas DataFrame."""
        with self.connect() as conn:
            return conn.execute(sql, params or []).df()
