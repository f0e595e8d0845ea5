"""Baselines set by hand, and the training reference every trained version keeps.

``baseline_changes`` records who set a model version's reference to what, and when
(``POST /api/ml/baseline``); rows are appended, never changed. The training reference of
a version (the profiles of the data it was trained on, its holdout metrics and calibration
sample) is kept as its own artifact when the version is trained, because a promotion may
replace the version's reference (``reference_on_promotion: validation``) and the training
data that includes served traffic cannot always be read again.
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from monitoring_pipeline.core import DatasetProfile

from .references import StoredReference, decode_sample, encode_sample
from .runs import insert_artifact
from .warehouse import Warehouse

TRAINING = "training_reference"  # the artifact's name and asset key (one per model version)


def insert_baseline_change(conn, model_name: str, model_version: str | None, basis: str, *,
                           window_start: datetime | None, window_end: datetime | None, rows: int | None,
                           set_by: str, note: str | None) -> datetime:
    """Append one ``baseline_changes`` row inside the caller's transaction; returns its ``set_at``."""
    if not set_by or not set_by.strip():
        raise ValueError("a baseline change needs set_by: who set it")
    return conn.execute("""INSERT INTO baseline_changes (model_name, model_version, basis, window_start, window_end,
                                                          rows, set_by, note)
                           VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING set_at""",
                        [model_name, model_version, basis, window_start, window_end, rows, set_by, note]).fetchone()[0]


def baseline_changes(wh: Warehouse, model_name: str) -> pd.DataFrame:
    """Every baseline set by hand for ``model_name``, newest first."""
    return wh.read("""SELECT model_name, model_version, basis, window_start, window_end, rows, set_by, note, set_at
                      FROM baseline_changes WHERE model_name = ?
                      ORDER BY set_at DESC, model_version DESC NULLS LAST""",
                   [model_name])


def store_training_reference(wh: Warehouse, model_name: str, model_version: str, ref: StoredReference) -> int:
    """Keep the training reference of a trained version (replacing an earlier copy of the same version)."""
    payload = {"inputs": ref.inputs.to_dict(), "outputs": None if ref.outputs is None else ref.outputs.to_dict(),
               "metrics": ref.metrics,
               "calibration": None if ref.calibration is None else encode_sample(ref.calibration)}
    return wh.write(lambda conn: insert_artifact(conn, "profile", TRAINING, payload=payload, model_name=model_name,
                                                 model_version=model_version, asset_key=TRAINING,
                                                 partition_key=model_name))


def load_training_reference(wh: Warehouse, model_name: str, model_version: str | None) -> StoredReference | None:
    """The training reference kept for a version; None when it has none (trained before it was kept)."""
    rows = wh.read("""SELECT payload FROM artifacts WHERE asset_key = ? AND name = ? AND partition_key = ?
                      AND model_version IS NOT DISTINCT FROM ? ORDER BY artifact_id DESC LIMIT 1""",
                   [TRAINING, TRAINING, model_name, model_version])
    if rows.empty:
        return None
    payload = json.loads(rows["payload"].iloc[0])
    return StoredReference(DatasetProfile.from_dict(payload["inputs"]),
                           DatasetProfile.from_dict(payload["outputs"]) if payload["outputs"] is not None else None,
                           payload["metrics"],
                           decode_sample(payload["calibration"]) if payload["calibration"] is not None else None)
