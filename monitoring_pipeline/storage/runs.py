"""Runs and artifacts: who ran what, and the profiles and reports they stored."""

from __future__ import annotations

import json
from typing import Literal

from monitoring_pipeline.core import DatasetProfile

from .warehouse import Warehouse

ArtifactKind = Literal["profile", "checkpoint", "report"]


def register_run(
    wh: Warehouse,
    run_name: str,
    *,
    task_name: str | None = None,
    model_name: str | None = None,
    model_version: str | None = None,
    config: dict | None = None,
    dagster_run_id: str | None = None,
) -> int:
    """A new row in ``runs``; returns its run_id."""
    return wh.write(lambda conn: conn.execute(
        """INSERT INTO runs (run_name, task_name, model_name, model_version, config, dagster_run_id)
           VALUES (?, ?, ?, ?, ?, ?) RETURNING run_id""",
        [run_name, task_name, model_name, model_version, json.dumps(config or {}), dagster_run_id],
    ).fetchone()[0])


def run_for_dagster(wh: Warehouse, dagster_run_id: str, run_name: str, model_name: str,
                    model_version: str | None = None, task_name: str | None = None) -> int:
    """The run_id of this Dagster run for this model, created on first use."""

    def work(conn):
        found = conn.execute("SELECT run_id FROM runs WHERE dagster_run_id = ? AND model_name = ?",
                             [dagster_run_id, model_name]).fetchone()
        if found:
            return found[0]
        return conn.execute(
            """INSERT INTO runs (run_name, task_name, model_name, model_version, config, dagster_run_id)
               VALUES (?, ?, ?, ?, '{}', ?) RETURNING run_id""",
            [run_name, task_name, model_name, model_version, dagster_run_id]).fetchone()[0]

    return wh.write(work)


def get_run(wh: Warehouse, run_id: int) -> dict | None:
    rows = wh.read("SELECT * FROM runs WHERE run_id = ?", [run_id]).to_dict("records")
    if not rows:
        return None
    run = rows[0]
    run["config"] = json.loads(run["config"]) if run["config"] else {}
    return run


def save_artifact(
    wh: Warehouse,
    kind: ArtifactKind,
    name: str,
    *,
    payload: dict | list | None = None,
    path: str | None = None,
    run_id: int | None = None,
    model_name: str | None = None,
    model_version: str | None = None,
    asset_key: str | None = None,
    partition_key: str | None = None,
) -> int:
    """Store an artifact; one written for an asset partition replaces the previous one of that
    name and model version."""
    return wh.write(lambda conn: insert_artifact(
        conn, kind, name, payload=payload, path=path, run_id=run_id, model_name=model_name,
        model_version=model_version, asset_key=asset_key, partition_key=partition_key))


def insert_artifact(conn, kind: ArtifactKind, name: str, *, payload: dict | list | None = None,
                    path: str | None = None, run_id: int | None = None, model_name: str | None = None,
                    model_version: str | None = None, asset_key: str | None = None,
                    partition_key: str | None = None) -> int:
    """``save_artifact`` inside the caller's transaction."""
    if asset_key is not None:
        conn.execute("""DELETE FROM artifacts WHERE asset_key = ? AND partition_key IS NOT DISTINCT FROM ?
                        AND name = ? AND model_version IS NOT DISTINCT FROM ?""",
                     [asset_key, partition_key, name, model_version])
    return conn.execute(
        """INSERT INTO artifacts (run_id, kind, name, model_name, model_version, asset_key,
                                  partition_key, payload, path)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING artifact_id""",
        [run_id, kind, name, model_name, model_version, asset_key, partition_key,
         None if payload is None else json.dumps(payload, allow_nan=False), path]).fetchone()[0]


def delete_artifact(wh: Warehouse, name: str, *, model_name: str, partition_key: str) -> int:
    """Withdraw a state artifact (an approval that no longer holds); returns the rows removed."""
    return wh.write(lambda conn: len(conn.execute(
        "DELETE FROM artifacts WHERE name = ? AND model_name = ? AND partition_key = ? RETURNING artifact_id",
        [name, model_name, partition_key]).fetchall()))


def failed_gate_windows(wh: Warehouse, model_name: str, gate: str) -> set[str]:
    """The partition keys whose latest stored ``window_gate`` verdict failed ``gate``."""
    rows = wh.read("""SELECT partition_key FROM artifacts WHERE name = 'window_gate' AND model_name = ?
                      AND ((payload -> 'gates') -> ?) ->> 'passed' = 'false'""", [model_name, gate])
    return set(rows["partition_key"])


def load_artifact(wh: Warehouse, artifact_id: int) -> dict:
    """The artifact row with its payload decoded; ValueError if there is none."""
    rows = wh.read("SELECT * FROM artifacts WHERE artifact_id = ?", [int(artifact_id)]).to_dict("records")
    if not rows:
        raise ValueError(f"artifact {artifact_id} is not in the warehouse")
    row = rows[0]
    row["payload"] = json.loads(row["payload"]) if row["payload"] is not None else None
    return row


def save_profile(wh: Warehouse, profile: DatasetProfile, name: str, **keys) -> int:
    return save_artifact(wh, "profile", name, payload=profile.to_dict(), **keys)


def load_profile(wh: Warehouse, artifact_id: int) -> DatasetProfile:
    row = load_artifact(wh, artifact_id)
    if row["kind"] != "profile":
        raise ValueError(f"artifact {artifact_id} is a {row['kind']}, not a profile")
    return DatasetProfile.from_dict(row["payload"])
