"""A model version's reference, stored whole or not at all.

Its inputs profile, outputs profile, reference metrics and labeled calibration sample
are written in one transaction that writes its ``reference_sets`` row last, and a
reader takes only a reference that has that row: a store cut short (an error, a killed
process) leaves nothing a reader would use, and the reference is built again.

The calibration sample (see :mod:`monitoring_pipeline.lib.estimation_inputs`) is a dict
of arrays: it is stored as JSON lists (missing and non-finite values as null, embeddings
rounded to float32's 7 significant digits) and read back as numpy arrays, with a
tabular ``X`` as a DataFrame. References stored before it existed load without one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring_pipeline.core import DatasetProfile

from .dialect import in_list
from .results import write_metrics
from .runs import insert_artifact
from .warehouse import Warehouse

ASSET = "reference_profile"
INPUTS, OUTPUTS, CALIBRATION = "reference_inputs", "reference_outputs", "reference_calibration"
_SAME_VERSION = "model_name = ? AND model_version IS NOT DISTINCT FROM ?"


@dataclass(frozen=True)
class StoredReference:
    inputs: DatasetProfile
    outputs: DatasetProfile | None
    metrics: dict[str, float]
    calibration: dict | None = None


def store_reference_set(wh: Warehouse, model_name: str, model_version: str | None, *, inputs: DatasetProfile,
                        outputs: DatasetProfile | None, metrics: dict, run_id: int | None,
                        replace: bool = True, calibration: dict | None = None, then=None) -> bool:
    """Store the reference of a model version in one transaction; it replaces the version's
    earlier one. With ``replace=False`` a version that already has a complete reference
    keeps it and nothing is written (two first runs racing: the first to commit wins).
    ``calibration`` is the version's labeled calibration sample, if it has one; ``then(conn)``,
    if given, runs in the same transaction after it (a record of why it was set).
    Returns whether this reference was stored."""
    keys = dict(run_id=run_id, model_name=model_name, model_version=model_version, asset_key=ASSET,
                partition_key=model_name)

    def work(conn) -> bool:
        if not replace and _marker(conn, model_name, model_version) is not None:
            return False
        conn.execute(f"DELETE FROM reference_sets WHERE {_SAME_VERSION}", [model_name, model_version])
        inputs_id = insert_artifact(conn, "profile", INPUTS, payload=inputs.to_dict(), **keys)
        ids = {}
        for name, payload in ((OUTPUTS, None if outputs is None else outputs.to_dict()),
                              (CALIBRATION, None if calibration is None else encode_sample(calibration))):
            if payload is not None:
                ids[name] = insert_artifact(conn, "profile", name, payload=payload, **keys)
            else:  # an earlier reference's part is not this one's
                conn.execute(f"""DELETE FROM artifacts WHERE name = ? AND asset_key = ? AND partition_key = ?
                                 AND {_SAME_VERSION}""", [name, ASSET, model_name, model_name, model_version])
        write_metrics(conn, metrics, model_name=model_name, model_version=model_version, data_split="reference",
                      window_start=None, window_end=None, estimated=False, asset_key=ASSET,
                      partition_key=model_name, run_id=run_id)
        conn.execute("""INSERT INTO reference_sets (model_name, model_version, inputs_id, outputs_id, calibration_id,
                                                    run_id) VALUES (?, ?, ?, ?, ?, ?)""",
                     [model_name, model_version, inputs_id, ids.get(OUTPUTS), ids.get(CALIBRATION), run_id])
        if then is not None:
            then(conn)
        return True

    return bool(wh.write(work))


def _marker(conn, model_name: str, model_version: str | None) -> tuple[int, int | None, int | None] | None:
    return conn.execute(f"""SELECT inputs_id, outputs_id, calibration_id FROM reference_sets WHERE {_SAME_VERSION}
                            ORDER BY stored_at DESC LIMIT 1""", [model_name, model_version]).fetchone()


def load_reference_set(wh: Warehouse, model_name: str, model_version: str | None, *,
                       calibration: bool = True) -> StoredReference | None:
    """The complete stored reference of a model version, read in one transaction; None if
    it has none (never stored, or a store that did not finish). Its calibration sample is
    None when it was stored without one, or not read with ``calibration=False`` (it can
    hold thousands of embeddings)."""

    def work(conn) -> StoredReference | None:
        marker = _marker(conn, model_name, model_version)
        if marker is None:
            return None
        inputs_id, outputs_id, calibration_id = marker
        wanted = [i for i in (inputs_id, outputs_id, calibration_id if calibration else None) if i is not None]
        payloads = dict(conn.execute(
            f"SELECT artifact_id, payload FROM artifacts WHERE {in_list('artifact_id', len(wanted))}", wanted).fetchall())
        metrics = conn.execute(f"""SELECT metric_name, metric_value FROM ml_performance_metrics
                                   WHERE asset_key = ? AND partition_key = ? AND {_SAME_VERSION}""",
                               [ASSET, model_name, model_name, model_version]).fetchall()
        profile = lambda i: DatasetProfile.from_dict(json.loads(payloads[i]))  # noqa: E731
        sample = decode_sample(json.loads(payloads[calibration_id])) if calibration_id in payloads else None
        return StoredReference(profile(inputs_id), profile(outputs_id) if outputs_id is not None else None,
                               dict(metrics), sample)

    with wh.connect() as conn:  # one snapshot: a concurrent store is seen whole or not at all
        conn.execute("BEGIN TRANSACTION")
        try:
            return work(conn)
        finally:
            conn.execute("ROLLBACK")


# --- the calibration sample as JSON ---------------------------------------------------

_LABELS, _NUMBERS = ("y_true", "y_pred"), ("y_score", "confidence")


def _significant(a: np.ndarray, digits: int = 7) -> np.ndarray:
    """``a`` rounded to ``digits`` significant digits (float32's precision), so its JSON is short."""
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(a)))
    scale = 10.0 ** (digits - 1 - np.where(np.isfinite(exponent), exponent, 0))
    return np.round(a * scale) / scale


def _json_array(values, *, short: bool = False) -> list:
    """Numbers as a (nested) list of floats, labels as strings; missing and non-finite as None."""
    a = np.asarray(values)
    if a.dtype == object or a.dtype.kind in "USb":
        return [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in a.tolist()]
    a = a.astype(np.float64)
    finite = np.isfinite(a)
    out = (_significant(a) if short else a).astype(object)
    out[~finite] = None
    return out.tolist()


def encode_sample(sample: dict) -> dict:
    """A calibration sample as a JSON-serialisable dict (see the module docstring)."""
    out = {}
    for key, value in sample.items():
        if isinstance(value, pd.DataFrame):
            kinds = {str(c): "numeric" if pd.api.types.is_numeric_dtype(value[c].dtype) else "categorical"
                     for c in value.columns}
            out[key] = {"columns": list(kinds), "kinds": kinds,
                        "data": {str(c): _json_array(value[c].to_numpy()) for c in value.columns}}
        elif isinstance(value, np.ndarray):
            out[key] = _json_array(value, short=key == "X")
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def decode_sample(payload: dict) -> dict:
    """The calibration sample a stored payload holds: labels as object arrays of strings (floats
    for regression), scores and embeddings as float arrays, a tabular ``X`` as a DataFrame."""
    out = dict(payload)
    regression = payload.get("task") == "regression"
    for key in _LABELS:
        if key in out:
            out[key] = np.array(out[key], dtype=np.float64 if regression else object)
    for key in _NUMBERS:
        if key in out:
            out[key] = np.array(out[key], dtype=np.float64)
    X = out.get("X")
    if isinstance(X, dict):
        out["X"] = pd.DataFrame({c: pd.Series(X["data"][c], dtype=np.float64 if X["kinds"][c] == "numeric" else object)
                                 for c in X["columns"]}, columns=X["columns"])
    elif isinstance(X, list):
        out["X"] = np.array(X, dtype=np.float64).reshape(len(X), -1)
    return out
