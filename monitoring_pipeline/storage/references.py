"""A model version's reference, stored whole or not at all.

Its inputs profile, outputs profile and reference metrics are written in one
transaction that writes its ``reference_sets`` row last, and a reader takes only a
reference that has that row: a store cut short (an error, a killed process) leaves
nothing a reader would use, and the reference is built again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from monitoring_pipeline.core import DatasetProfile

from .results import write_metrics
from .runs import insert_artifact
from .warehouse import Warehouse

ASSET = "reference_profile"
INPUTS, OUTPUTS = "reference_inputs", "reference_outputs"
_SAME_VERSION = "model_name = ? AND model_version IS NOT DISTINCT FROM ?"


@dataclass(frozen=True)
class StoredReference:
    inputs: DatasetProfile
    outputs: DatasetProfile | None
    metrics: dict[str, float]


def store_reference_set(wh: Warehouse, model_name: str, model_version: str | None, *, inputs: DatasetProfile,
                        outputs: DatasetProfile | None, metrics: dict, run_id: int | None,
                        replace: bool = True) -> bool:
    """Store the reference of a model version in one transaction; it replaces the version's
    earlier one. With ``replace=False`` a version that already has a complete reference
    keeps it and nothing is written (two first runs racing: the first to commit wins).
    Returns whether this reference was stored."""
    keys = dict(run_id=run_id, model_name=model_name, model_version=model_version, asset_key=ASSET,
                partition_key=model_name)

    def work(conn) -> bool:
        if not replace and _marker(conn, model_name, model_version) is not None:
            return False
        conn.execute(f"DELETE FROM reference_sets WHERE {_SAME_VERSION}", [model_name, model_version])
        inputs_id = insert_artifact(conn, "profile", INPUTS, payload=inputs.to_dict(), **keys)
        outputs_id = None
        if outputs is not None:
            outputs_id = insert_artifact(conn, "profile", OUTPUTS, payload=outputs.to_dict(), **keys)
        else:  # an earlier reference's outputs are not this one's
            conn.execute(f"""DELETE FROM artifacts WHERE name = ? AND asset_key = ? AND partition_key = ?
                             AND {_SAME_VERSION}""", [OUTPUTS, ASSET, model_name, model_name, model_version])
        write_metrics(conn, metrics, model_name=model_name, model_version=model_version, data_split="reference",
                      window_start=None, window_end=None, estimated=False, asset_key=ASSET,
                      partition_key=model_name, run_id=run_id)
        conn.execute("""INSERT INTO reference_sets (model_name, model_version, inputs_id, outputs_id, run_id)
                        VALUES (?, ?, ?, ?, ?)""", [model_name, model_version, inputs_id, outputs_id, run_id])
        return True

    return bool(wh.write(work))


def _marker(conn, model_name: str, model_version: str | None) -> tuple[int, int | None] | None:
    return conn.execute(f"""SELECT inputs_id, outputs_id FROM reference_sets WHERE {_SAME_VERSION}
                            ORDER BY stored_at DESC LIMIT 1""", [model_name, model_version]).fetchone()


def load_reference_set(wh: Warehouse, model_name: str, model_version: str | None) -> StoredReference | None:
    """The complete stored reference of a model version, read in one transaction; None if
    it has none (never stored, or a store that did not finish)."""

    def work(conn) -> StoredReference | None:
        marker = _marker(conn, model_name, model_version)
        if marker is None:
            return None
        payloads = dict(conn.execute("SELECT artifact_id, payload FROM artifacts WHERE list_contains(?, artifact_id)",
                                     [[i for i in marker if i is not None]]).fetchall())
        metrics = conn.execute(f"""SELECT metric_name, metric_value FROM ml_performance_metrics
                                   WHERE asset_key = ? AND partition_key = ? AND {_SAME_VERSION}""",
                               [ASSET, model_name, model_name, model_version]).fetchall()
        profile = lambda i: DatasetProfile.from_dict(json.loads(payloads[i]))  # noqa: E731
        return StoredReference(profile(marker[0]), profile(marker[1]) if marker[1] is not None else None,
                               dict(metrics))

    with wh.connect() as conn:  # one snapshot: a concurrent store is seen whole or not at all
        conn.execute("BEGIN TRANSACTION")
        try:
            return work(conn)
        finally:
            conn.execute("ROLLBACK")
