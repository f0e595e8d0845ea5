"""The API's snapshot of a PostgreSQL warehouse: the tables a DuckDB warehouse's snapshot holds, read
from PostgreSQL in one REPEATABLE READ transaction (one consistent view while runs write; a writer's
open transaction never makes it wait) and written into the snapshot's DuckDB file through pandas
(DuckDB's postgres extension is a download, which not every machine that serves the API can make).

Whether the warehouse changed since a snapshot is read from the server's transaction snapshot
(``pg_current_snapshot()``: the oldest running, the next and the running transaction ids): it moves
whenever a transaction that wrote anything ends, so a commit is seen the moment it is made. It is
server-wide (another database's writes, the Dagster instance's among them, move it too): a change
may be another database's, which costs one needless copy, never a missed one.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg

from monitoring_pipeline.storage.postgres import PostgresWarehouse

# The base tables of the warehouse's schema (the connection's search_path), their columns in order.
_COLUMNS = """SELECT c.table_name, c.column_name FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
    ORDER BY c.table_name, c.ordinal_position"""
_STAMP = "SELECT CAST(pg_current_snapshot() AS TEXT)"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stamp(wh: PostgresWarehouse) -> tuple:
    """The server's transaction snapshot now: it differs from an earlier one once a write ended since."""
    with wh.connect() as conn:
        return ("postgres", conn.execute(_STAMP).fetchone()[0])


def copy_into(wh: PostgresWarehouse, path: Path, target: dict[str, list[str]], skipped: tuple[str, ...],
              row_filters: dict[str, str]) -> tuple[tuple, datetime]:
    """Copy every table of ``wh`` that the snapshot at ``path`` has (``target``: its tables' columns),
    but ``skipped``, with ``row_filters`` (a WHERE condition per table), columns both have. Returns
    (the stamp the copy read at, when it read, UTC)."""
    frames = {}
    with wh.connect() as conn:
        conn.execute("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            at = ("postgres", conn.execute(_STAMP).fetchone()[0])  # the first statement fixes the view
            as_of = datetime.now(UTC)
            columns: dict[str, list[str]] = {}
            for table, column in conn.execute(_COLUMNS).fetchall():
                columns.setdefault(table, []).append(column)
            for table, names in columns.items():
                if table in skipped or table not in target:
                    continue
                shared = [c for c in names if c in target[table]]
                where = f" WHERE {row_filters[table]}" if table in row_filters else ""
                frames[table] = (shared, conn.execute(
                    f"SELECT {', '.join(_quote(c) for c in shared)} FROM {_quote(table)}{where}").df())
            conn.execute("COMMIT")
        except BaseException:
            with suppress(psycopg.Error):  # the copy's own error is what matters
                conn.execute("ROLLBACK")
            raise
    snapshot = duckdb.connect(str(path))
    try:
        snapshot.execute("SET threads = 1")  # the other core answers requests
        snapshot.execute("BEGIN TRANSACTION")
        for table, (shared, frame) in frames.items():
            if frame.empty:
                continue
            listed = ", ".join(_quote(c) for c in shared)
            snapshot.register("api_copy", frame)
            snapshot.execute(f"INSERT INTO {_quote(table)} ({listed}) SELECT {listed} FROM api_copy")
            snapshot.unregister("api_copy")
        snapshot.execute("COMMIT")
    finally:
        snapshot.close()
    return at, as_of
