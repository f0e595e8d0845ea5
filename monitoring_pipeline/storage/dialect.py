"""Every place the warehouse's two SQL dialects (DuckDB, PostgreSQL) differ, each named.

The storage code writes SQL both engines accept (standard SQL, window functions, ``IS NOT
DISTINCT FROM``, ``RETURNING``, ``? IS NULL``); what they do not share is here:

- ``ddl``: the DDL type names (``DOUBLE`` is ``DOUBLE PRECISION`` in PostgreSQL; ``JSON`` is
  PostgreSQL's ``json``, which keeps the text as written, as DuckDB's does, where ``jsonb``
  would reorder keys);
- ``placeholders``: ``?`` parameters (DuckDB) are ``%s`` for psycopg, and a literal ``%`` is ``%%``;
- ``arg_max``: DuckDB's aggregate; PostgreSQL has none (an ordered ``array_agg``, first element).
  For "the newest row per key" prefer the portable ``LEFT JOIN LATERAL (... ORDER BY t DESC
  LIMIT 1) ON true`` (``traffic.read_log_window``): PostgreSQL, misjudging a freshly loaded
  table's size, would run an aggregate-and-join once per row;
- ``ROW_ORDER``: the insertion-order tie-break (DuckDB's ``rowid``, PostgreSQL's ``ctid``);
- ``migration_begin``: PostgreSQL migrations take a transaction-scoped advisory lock, in READ
  COMMITTED so that what another process migrated while this one waited is seen;
- ``is_conflict`` / ``is_bad_value`` / ``is_constraint_violation``: the engines' errors, by kind.

Differences the connection wrapper (``storage/postgres.py``) absorbs instead, so callers do not
see them: JSON comes back as text and TIMESTAMP as naive datetimes; a DML statement without
RETURNING answers one row holding its row count (DuckDB's ``Count``); aggregates of integers
come back as numbers, not Decimal; ``df()`` gives DuckDB's dtypes; the session's TimeZone is the
process's local zone, so ``current_timestamp`` stored in a TIMESTAMP is the same wall-clock time
as DuckDB stores; a transaction is SERIALIZABLE, so two writers of one partition conflict (and
``write`` retries) instead of both committing, as DuckDB's optimistic transactions do; a
registered frame is a temporary table filled by COPY (and ANALYZEd); executemany batches an
INSERT's rows. Text sorts as the database's collation orders it (DuckDB: by bytes, as
PostgreSQL's ``C`` does).

Semantic differences the SQL must spell out for both (no helper needed): ``/`` on integers
truncates in PostgreSQL (DuckDB: float division): divide doubles; NULLs sort last in DuckDB
whatever the direction, first in PostgreSQL's DESC: say ``NULLS LAST`` / ``NULLS FIRST``;
unquoted identifiers are folded to lower case in PostgreSQL: aliases are lower case; a
subquery in FROM needs an alias in PostgreSQL 15; ``->`` binds to the right in DuckDB:
parenthesize chains, ``(payload -> 'a') ->> 'b'``; ``QUALIFY``, ``GROUP BY ALL``,
``list_contains``, ``json_extract_string``, ``to_days`` are DuckDB's alone (``in_list``,
explicit GROUP BY, ``->>``, interval arithmetic are portable).
"""

from __future__ import annotations

import re
from functools import lru_cache

DUCKDB, POSTGRES = "duckdb", "postgres"
DIALECTS = (DUCKDB, POSTGRES)

# Insertion order among rows of an append-only table (a tie-break, not a key).
ROW_ORDER = {DUCKDB: "rowid", POSTGRES: "ctid"}

MIGRATION_LOCK = 7_316_201_516  # pg_advisory_xact_lock's key for this schema's migrations

_DOUBLE = re.compile(r"\bDOUBLE\b(?!\s+PRECISION)", re.IGNORECASE)
# A string literal, a quoted identifier, a comment, or one character: what ``placeholders`` walks.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|.", re.DOTALL)


def dialect_of(conn) -> str:
    """The dialect of a connection the warehouse gave (the PostgreSQL wrapper says so; DuckDB's does not)."""
    return getattr(conn, "dialect", DUCKDB)


def check(dialect: str) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    return dialect


def ddl(statement: str, dialect: str) -> str:
    """A schema statement written with DuckDB's type names, in ``dialect``'s."""
    return _DOUBLE.sub("DOUBLE PRECISION", statement) if check(dialect) == POSTGRES else statement


@lru_cache(maxsize=4096)
def placeholders(sql: str) -> str:
    """``sql`` with ``?`` parameters as psycopg's ``%s`` and a literal ``%`` doubled; string
    literals, quoted identifiers and comments keep their ``?`` (a ``%`` in them is doubled too:
    psycopg reads the whole text)."""
    out = []
    for token in _TOKENS.findall(sql):
        if token == "?":
            out.append("%s")
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


def arg_max(value: str, order: str, dialect: str) -> str:
    """The aggregate: ``value`` of the row with the greatest ``order``; rows where either is NULL
    are skipped, as DuckDB's arg_max skips them."""
    if check(dialect) == DUCKDB:
        return f"arg_max({value}, {order})"
    return (f"(array_agg({value} ORDER BY {order} DESC) "
            f"FILTER (WHERE {value} IS NOT NULL AND {order} IS NOT NULL))[1]")


def in_list(column: str, count: int) -> str:
    """``column IN (?, ...)`` for ``count`` parameters; ``false`` when there are none (``IN ()`` is
    not SQL). Portable: DuckDB's ``list_contains(?, column)`` is not PostgreSQL's."""
    return f"{column} IN ({', '.join('?' * count)})" if count else "false"


def migration_begin(dialect: str) -> list[str]:
    """The statements that open one migration's transaction."""
    if check(dialect) == DUCKDB:
        return ["BEGIN TRANSACTION"]
    return ["BEGIN TRANSACTION ISOLATION LEVEL READ COMMITTED", f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"]


def _sqlstate(error: BaseException) -> str | None:
    return getattr(error, "sqlstate", None) if type(error).__module__.startswith("psycopg") else None


def is_conflict(error: BaseException) -> bool:
    """Another writer got there first: retry the whole transaction. DuckDB: a write-write conflict
    between transactions; PostgreSQL: a serialization failure or a deadlock."""
    import duckdb

    if isinstance(error, duckdb.TransactionException):
        return "conflict" in str(error).lower()
    return _sqlstate(error) in ("40001", "40P01")


def is_constraint_violation(error: BaseException) -> bool:
    """A key, NOT NULL or CHECK constraint refused a row."""
    import duckdb

    return isinstance(error, duckdb.ConstraintException) or (_sqlstate(error) or "").startswith("23")


def is_bad_value(error: BaseException) -> bool:
    """A value the column's type cannot hold (a malformed time, JSON text that is not JSON, ...)."""
    import duckdb

    return isinstance(error, (duckdb.ConversionException, duckdb.InvalidInputException)) \
        or (_sqlstate(error) or "").startswith("22")


def database_errors() -> tuple[type[BaseException], ...]:
    """Every error class either engine raises, for an ``except`` clause (``except database_errors():``):
    the engines are imported when an error is being matched, not when this module is."""
    import duckdb
    import psycopg

    return duckdb.Error, psycopg.Error
