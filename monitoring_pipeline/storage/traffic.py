"""Traffic: the inference log, labels that arrive later, and windows read from them
(windows of Parquet/CSV files are read in place by ``lib.sources``).

A window is a DataFrame with one row per prediction: ``ts``, ``request_id``,
``model_version``, the feature columns, ``prediction``, ``confidence``, ``latency_ms``,
``error`` and ``label`` (None until it arrives).
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from .warehouse import Warehouse

LOG_COLUMNS = ["ts", "model_name", "model_version", "request_id", "input_hash", "features", "prediction",
               "confidence", "latency_ms", "error"]
WINDOW_COLUMNS = ["ts", "request_id", "model_version", "prediction", "confidence", "latency_ms", "error", "label"]


def _json_value(v):
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


def append_inference(wh: Warehouse, rows: pd.DataFrame) -> int:
    """Append predictions; ``features`` holds a dict per row (stored as JSON)."""
    missing = [c for c in ("ts", "model_name", "request_id") if c not in rows.columns]
    if missing:
        raise ValueError(f"inference rows need columns {missing}")
    frame = rows.reindex(columns=LOG_COLUMNS).copy()
    frame["features"] = [None if f is None or (isinstance(f, float) and f != f)
                         else json.dumps({k: _json_value(v) for k, v in f.items()}, default=str)
                         for f in frame["features"]]
    frame["prediction"] = [None if p is None else str(_json_value(p)) for p in frame["prediction"]]
    records = frame.astype(object).where(frame.notna(), None).values.tolist()

    def work(conn):
        conn.executemany(f"INSERT INTO inference_log ({', '.join(LOG_COLUMNS)}) VALUES "
                         f"({', '.join('?' for _ in LOG_COLUMNS)})", records)
        return len(records)

    return wh.write(work)


def append_labels(wh: Warehouse, rows: pd.DataFrame) -> int:
    """Append ground truth: ``request_id``, ``label`` and optionally ``labeled_at``."""
    frame = rows.reindex(columns=["request_id", "label"]).copy()
    frame["label"] = [None if v is None else str(_json_value(v)) for v in frame["label"]]
    now = pd.Timestamp.now()
    frame["labeled_at"] = rows["labeled_at"].fillna(now) if "labeled_at" in rows.columns else now
    records = frame.astype(object).where(frame.notna(), None).values.tolist()
    return wh.write(lambda conn: conn.executemany(
        "INSERT INTO labels (request_id, label, labeled_at) VALUES (?, ?, ?)", records) or len(records))


def _expand(frame: pd.DataFrame, features_column: str = "features") -> pd.DataFrame:
    features = pd.DataFrame([json.loads(f) if f else {} for f in frame[features_column]], index=frame.index)
    clash = [c for c in features.columns if c in WINDOW_COLUMNS]
    if clash:
        raise ValueError(f"feature names {clash} collide with the window's own columns")
    return pd.concat([frame.drop(columns=[features_column]), features], axis=1)


def read_log_window(wh: Warehouse, model_name: str, start: datetime, end: datetime,
                    labeled_before: datetime | None = None) -> pd.DataFrame:
    """Predictions of ``model_name`` with start <= ts < end, with the newest label known
    by ``labeled_before`` (default: now)."""
    frame = wh.read(
        """SELECT l.ts, l.request_id, l.model_version, l.features, l.prediction, l.confidence,
                  l.latency_ms, l.error, lab.label
           FROM inference_log l
           LEFT JOIN (SELECT request_id, arg_max(label, labeled_at) AS label FROM labels
                      WHERE labeled_at <= coalesce(?, current_timestamp) GROUP BY request_id) lab
             ON lab.request_id = l.request_id
           WHERE l.model_name = ? AND l.ts >= ? AND l.ts < ?
           ORDER BY l.ts, l.request_id, l.model_version""",
        [labeled_before, model_name, start, end])
    return _expand(frame)


def delete_raw_logs(wh: Warehouse, before: datetime) -> dict[str, int]:
    """Retention: delete inference_log rows older than ``before`` and their labels.

    Only the raw traffic tables are touched; every history table is kept.
    """

    def work(conn):
        labels = conn.execute(
            """DELETE FROM labels WHERE request_id IN (SELECT request_id FROM inference_log WHERE ts < ?)
               AND request_id NOT IN (SELECT request_id FROM inference_log WHERE ts >= ?)""",
            [before, before]).fetchall()
        logs = conn.execute("DELETE FROM inference_log WHERE ts < ?", [before]).fetchall()
        return {"inference_log": logs[0][0] if logs else 0, "labels": labels[0][0] if labels else 0}

    return wh.write(work)
