"""The model registry: versions, their stage (champion, challenger, archived) and its history.

A model has at most one champion. Promoting a version archives the champion it replaces,
in the same transaction; every stage change is kept in ``model_registry_events``, which
is what a rollback reads to find the previous champion.
"""

from __future__ import annotations

import json

from .dialect import ROW_ORDER, dialect_of
from .warehouse import Warehouse

STAGES = ("champion", "challenger", "archived")


def _set_stage(conn, model_name: str, version: str, stage: str, reason: str) -> None:
    conn.execute("UPDATE model_registry SET stage = ?, updated_at = current_timestamp "
                 "WHERE model_name = ? AND model_version = ?", [stage, model_name, version])
    conn.execute("INSERT INTO model_registry_events (model_name, model_version, stage, reason) VALUES (?, ?, ?, ?)",
                 [model_name, version, stage, reason])


def _champion(conn, model_name: str) -> str | None:
    row = conn.execute("SELECT model_version FROM model_registry WHERE model_name = ? AND stage = 'champion'",
                       [model_name]).fetchone()
    return row[0] if row else None


def _promote(conn, model_name: str, version: str, reason: str) -> str | None:
    previous = _champion(conn, model_name)
    if previous == version:
        return previous
    if previous is not None:
        _set_stage(conn, model_name, previous, "archived", f"replaced by {version}: {reason}")
    _set_stage(conn, model_name, version, "champion", reason)
    return previous


def register_model(wh: Warehouse, model_name: str, version: str, stage: str, *, framework: str, path: str,
                   metrics: dict, reason: str = "registered", weights_sha256: str | None = None) -> None:
    """Add a version; registering it as champion archives the current one.

    ``weights_sha256`` is the checkpoint's weights hash (its card's ``weights_sha256``,
    taken when the project wrote it): a checkpoint loads only when its file still has it.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")

    def work(conn):
        exists = conn.execute("SELECT 1 FROM model_registry WHERE model_name = ? AND model_version = ?",
                              [model_name, version]).fetchone()
        if exists:
            raise ValueError(f"model {model_name!r} version {version!r} is already registered")
        conn.execute("""INSERT INTO model_registry
                        (model_name, model_version, stage, framework, path, metrics, weights_sha256)
                        VALUES (?, ?, 'challenger', ?, ?, ?, ?)""",
                     [model_name, version, framework, path, json.dumps(metrics), weights_sha256])
        conn.execute("INSERT INTO model_registry_events (model_name, model_version, stage, reason) "
                     "VALUES (?, ?, 'challenger', ?)", [model_name, version, reason])
        if stage == "champion":
            _promote(conn, model_name, version, reason)
        elif stage == "archived":
            _set_stage(conn, model_name, version, "archived", reason)

    wh.write(work)


def promote(wh: Warehouse, model_name: str, version: str, reason: str) -> str | None:
    """Make ``version`` the champion; returns the version it replaced."""
    def work(conn):
        if conn.execute("SELECT 1 FROM model_registry WHERE model_name = ? AND model_version = ?",
                        [model_name, version]).fetchone() is None:
            raise ValueError(f"model {model_name!r} has no version {version!r}")
        return _promote(conn, model_name, version, reason)

    return wh.write(work)


def archive(wh: Warehouse, model_name: str, version: str, reason: str) -> None:
    wh.write(lambda conn: _set_stage(conn, model_name, version, "archived", reason))


def rollback(wh: Warehouse, model_name: str, reason: str = "rollback") -> tuple[str, str]:
    """Make the previous champion the champion again; returns (from, to) versions."""
    def work(conn):
        current = _champion(conn, model_name)
        if current is None:
            raise ValueError(f"model {model_name!r} has no champion to roll back")
        row = conn.execute(
            f"""SELECT model_version FROM model_registry_events
                WHERE model_name = ? AND stage = 'champion' AND model_version <> ?
                ORDER BY changed_at DESC, {ROW_ORDER[dialect_of(conn)]} DESC LIMIT 1""",
            [model_name, current]).fetchone()
        if row is None:
            raise ValueError(f"model {model_name!r} has had no champion before {current!r}")
        _promote(conn, model_name, row[0], reason)
        return current, row[0]

    return wh.write(work)


def champion(wh: Warehouse, model_name: str) -> dict | None:
    """The champion's registry row (metrics parsed), or None."""
    frame = wh.read("SELECT * FROM model_registry WHERE model_name = ? AND stage = 'champion'", [model_name])
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
    return row


def recorded_checkpoints(wh: Warehouse) -> dict[str, str | None]:
    """Every checkpoint directory the registry records, with the weights' sha256 recorded for it."""
    rows = wh.read("SELECT path, weights_sha256 FROM model_registry WHERE path IS NOT NULL "
                   "ORDER BY created_at, model_name, model_version")
    return {path: (sha if isinstance(sha, str) else None) for path, sha in rows.itertuples(index=False)}


def record_weights_sha256(wh: Warehouse, model_name: str, version: str, weights_sha256: str) -> None:
    """Record the weights hash of a version registered without one (before the column existed);
    a hash already recorded is never replaced."""
    def work(conn):
        row = conn.execute("SELECT weights_sha256 FROM model_registry WHERE model_name = ? AND model_version = ?",
                           [model_name, version]).fetchone()
        if row is None:
            raise ValueError(f"model {model_name!r} has no version {version!r}")
        if row[0] is not None and row[0] != weights_sha256:
            raise ValueError(f"model {model_name!r} version {version!r} already records sha256 {row[0]}")
        conn.execute("UPDATE model_registry SET weights_sha256 = ? WHERE model_name = ? AND model_version = ?",
                     [weights_sha256, model_name, version])

    wh.write(work)


def versions(wh: Warehouse, model_name: str):
    return wh.read("SELECT * FROM model_registry WHERE model_name = ? ORDER BY created_at, model_version",
                   [model_name])
