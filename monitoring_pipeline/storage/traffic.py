"""Traffic: the inference log, labels that arrive later, and windows read from them
(windows of Parquet/CSV files are read in place by ``lib.sources``).

A window is a DataFrame with one row per prediction: ``ts``, ``request_id``,
``model_version``, the feature columns, ``prediction``, ``confidence``, ``latency_ms``,
``error`` and ``label`` (None until it arrives).
"""

from __future__ import annotations

import json
from contextlib import contextmanager, suppress
from datetime import datetime

import pandas as pd

from .dialect import database_errors
from .warehouse import Warehouse

LOG_COLUMNS = ["ts", "model_name", "model_version", "request_id", "input_hash", "features", "prediction",
               "confidence", "latency_ms", "error"]
INTAKE_COLUMNS = [*LOG_COLUMNS, "scores"]  # what the HTTP API's intake stores (scores kept, not windowed)
WINDOW_COLUMNS = ["ts", "request_id", "model_version", "prediction", "confidence", "latency_ms", "error", "label"]


def _json_value(v):
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _log_frame(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Rows as ``inference_log`` stores them: ``features`` (a dict per row) and ``scores``
    (a dict or list per row) as JSON text, the prediction as text. Values that are text already
    are taken as JSON text (the API's intake encodes them once; DuckDB refuses text that is not JSON)."""
    missing = [c for c in ("ts", "model_name", "request_id") if c not in rows.columns]
    if missing:
        raise ValueError(f"inference rows need columns {missing}")
    frame = rows.reindex(columns=columns).copy()
    frame["features"] = [None if _missing(f) else f if isinstance(f, str) else
                         json.dumps({k: _json_value(v) for k, v in f.items()}, default=str) for f in frame["features"]]
    if "scores" in frame.columns:
        frame["scores"] = [None if _missing(s) else s if isinstance(s, str) else json.dumps(
            {k: _json_value(v) for k, v in s.items()} if isinstance(s, dict) else [_json_value(v) for v in s])
            for s in frame["scores"]]
    frame["prediction"] = [None if p is None else str(_json_value(p)) for p in frame["prediction"]]
    return frame


def append_inference(wh: Warehouse, rows: pd.DataFrame) -> int:
    """Append predictions; ``features`` holds a dict per row (stored as JSON)."""
    frame = _log_frame(rows, LOG_COLUMNS)
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


def _utc(values) -> pd.Series:
    """Times (ISO text or datetimes) as UTC without a zone; ValueError naming a bad one."""
    return pd.to_datetime(pd.Series(values), format="ISO8601", utc=True).dt.tz_localize(None)


@contextmanager
def _registered(conn, name: str, frame: pd.DataFrame):
    """``frame`` as table ``name`` on ``conn`` while the block runs."""
    conn.register(name, frame)
    try:
        yield
    finally:
        with suppress(*database_errors()):  # after a failed statement the transaction is aborted: that error matters
            conn.unregister(name)


def insert_new_inferences(conn, rows: pd.DataFrame) -> int:
    """Insert, inside the caller's transaction on ``conn``, the predictions not logged yet: a row
    whose (model_name, request_id) is already in ``inference_log`` (or earlier in ``rows``) is
    skipped. Returns the number inserted. ``scores`` (a dict or list per row) is kept as JSON."""
    frame = _log_frame(rows, INTAKE_COLUMNS).drop_duplicates(["model_name", "request_id"], keep="first")
    frame["ts"] = _utc(frame["ts"])
    for column in ("model_name", "request_id"):  # text in the log, whatever the sender's JSON held
        frame[column] = frame[column].astype(str)
    frame["confidence"] = pd.to_numeric(frame["confidence"]).astype("float64")
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"]).astype("float64")
    # the registered frame's JSON columns are text: cast to JSON, as PostgreSQL wants it said
    values = ", ".join(f"CAST(b.{c} AS JSON)" if c in ("features", "scores") else f"b.{c}" for c in INTAKE_COLUMNS)
    with _registered(conn, "_intake_rows", frame):
        inserted = conn.execute(
            f"""INSERT INTO inference_log ({", ".join(INTAKE_COLUMNS)})
                SELECT {values} FROM _intake_rows b
                WHERE NOT EXISTS (SELECT 1 FROM inference_log l
                                  WHERE l.model_name = b.model_name AND l.request_id = b.request_id)""").fetchone()
    return int(inserted[0]) if inserted else 0


def insert_new_labels(conn, rows: pd.DataFrame) -> int:
    """Insert, inside the caller's transaction on ``conn``, the labels not stored yet: a row that
    repeats the request's current label (its newest by ``labeled_at``) or an identical stored row is
    skipped; a different label is a correction and is kept beside the old ones (the newest
    ``labeled_at`` wins when a window reads it), so A, then B, then A again leaves A current.
    ``labeled_at`` must be set. Returns the number inserted."""
    if rows["labeled_at"].isna().any():
        raise ValueError("every label row needs labeled_at")
    frame = pd.DataFrame({"request_id": rows["request_id"].astype(str),
                          "label": [None if _missing(v) else str(_json_value(v)) for v in rows["label"]],
                          "labeled_at": _utc(rows["labeled_at"])}).drop_duplicates(
        ["request_id", "label"], keep="first")
    with _registered(conn, "_intake_labels", frame):
        inserted = conn.execute(
            """INSERT INTO labels (request_id, label, labeled_at)
               SELECT request_id, label, labeled_at FROM _intake_labels b
               WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.request_id = b.request_id
                                 AND l.label IS NOT DISTINCT FROM b.label AND l.labeled_at = b.labeled_at)
                 AND NOT EXISTS (SELECT 1 FROM (
                         SELECT request_id, label,
                                row_number() OVER (PARTITION BY request_id ORDER BY labeled_at DESC) AS n
                         FROM labels WHERE request_id IN (SELECT request_id FROM _intake_labels)) latest
                     WHERE latest.n = 1 AND latest.request_id = b.request_id
                       AND latest.label IS NOT DISTINCT FROM b.label)"""
        ).fetchone()
    return int(inserted[0]) if inserted else 0


def _expand(frame: pd.DataFrame, features_column: str = "features") -> pd.DataFrame:
    features = pd.DataFrame([json.loads(f) if f else {} for f in frame[features_column]], index=frame.index)
    clash = [c for c in features.columns if c in WINDOW_COLUMNS]
    if clash:
        raise ValueError(f"feature names {clash} collide with the window's own columns")
    return pd.concat([frame.drop(columns=[features_column]), features], axis=1)


def read_log_window(wh: Warehouse, model_name: str, start: datetime, end: datetime,
                    labeled_before: datetime | None = None) -> pd.DataFrame:
    """Predictions of ``model_name`` with start <= ts < end, with the newest label known
    by ``labeled_before`` (default: now).

    The label is looked up per prediction (a LATERAL join on the labels' request_id index), not
    aggregated over every label and joined: PostgreSQL, misjudging a freshly loaded window as one
    row, ran the aggregate once per prediction (10,000 rows: 93 s; this way 0.17 s; DuckDB the same)."""
    frame = wh.read(
        """SELECT l.ts, l.request_id, l.model_version, l.features, l.prediction, l.confidence,
                  l.latency_ms, l.error, lab.label
           FROM inference_log l
           LEFT JOIN LATERAL (SELECT b.label FROM labels b
                              WHERE b.request_id = l.request_id AND b.label IS NOT NULL
                                AND b.labeled_at <= coalesce(?, CAST(current_timestamp AS TIMESTAMP))
                              ORDER BY b.labeled_at DESC LIMIT 1) lab ON true
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
