"""A window's performance, realized or estimated, and the history of estimates beside the truth.

``ml_performance_metrics`` holds one answer per window and metric: the realized value once
labels are in, else the label-free estimate (``estimated = true``, with its interval,
method and reliability). A window's labels arriving replace its estimated rows, so no stale
estimate is left beside the realized value.

``performance_estimates`` keeps every estimate the pipeline made, next to the realized value
once it is known, so a person can see how good the estimates were (view ``estimate_errors``).
Both tables are written in one transaction.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

import pandas as pd

from monitoring_pipeline.core.estimation import metric_entries

from .results import _num, _replace, write_metrics
from .warehouse import Warehouse

SPLIT = "production"


def _plain(value):
    """``value`` as JSON-safe plain Python: numpy scalars unwrapped, NaN and inf as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar or 0-d array
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _realized(value) -> float | None:
    """A realized metric's value when it is a finite number (booleans and nested values are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return _num(value)


def estimate_entries(estimate: dict) -> dict[str, dict]:
    """The per-metric entries of an ``estimate_performance`` result (dicts with an ``estimate``)."""
    entries = metric_entries(estimate)
    if not entries:
        raise ValueError("the estimate has no metric entries (dicts with an 'estimate' key); "
                         f"its keys are {sorted(estimate)}")
    return entries


def _estimate_fields(name: str, entry: dict, estimate: dict) -> tuple:
    """(method, estimate, low, high, reliable, reason) of one metric entry; the overall flag and
    reason stand in for an entry's missing ones, and an entry is reliable only if both are."""
    method = entry.get("method") or estimate.get("method")
    if not method:
        raise ValueError(f"the estimate of {name!r} names no method (neither the entry nor the result has one)")
    reliable = bool(entry.get("reliable", estimate.get("reliable", False))) and bool(estimate.get("reliable", True))
    reason = entry.get("reason") or (estimate.get("reason") if not reliable else None) or None
    return method, _num(entry["estimate"]), _num(entry.get("low")), _num(entry.get("high")), reliable, reason


def record_window_performance(wh: Warehouse, *, realized: dict | None, estimate: dict | None, model_name: str,
                              model_version: str | None, window_start: datetime | None,
                              window_end: datetime | None, n_rows: int, n_labeled: int, asset_key: str,
                              partition_key: str, run_id: int | None) -> dict:
    """Store a window's metrics and its estimate in one transaction; returns the rows written.

    - ``ml_performance_metrics``: every row of the window (this asset, partition and model,
      estimated or not, any version) is replaced by the ``realized`` metrics when given,
      else by the ``estimate``'s metrics (an undefined estimate is left out).
    - ``performance_estimates``: an ``estimate`` replaces the window's rows, one per metric
      (an undefined one kept with its reason), each with its realized value when ``realized``
      has it. Without an estimate, ``realized`` fills in the realized value of the window's
      stored estimates, which stay as they were made.

    Returns ``{"metrics": rows in ml_performance_metrics, "estimates": estimate rows written,
    "realized": estimate rows that now hold a realized value}``.
    """
    if realized is not None and not isinstance(realized, dict):
        raise ValueError(f"realized must be a dict of metrics or None, got {type(realized).__name__}")
    entries = estimate_entries(estimate) if estimate is not None else {}
    truth = {name: v for name, v in ((n, _realized(x)) for n, x in (realized or {}).items()) if v is not None}
    labeled = int(n_labeled) if realized is not None else None
    where = "asset_key = ? AND partition_key = ? AND model_name = ?"
    keys = [asset_key, partition_key, model_name]

    def work(conn) -> dict:
        out = {"metrics": 0, "estimates": 0, "realized": 0}
        conn.execute(f"DELETE FROM ml_performance_metrics WHERE {where}", keys)
        if realized is not None:
            out["metrics"] = write_metrics(conn, realized, model_name=model_name, model_version=model_version,
                                           data_split=SPLIT, window_start=window_start, window_end=window_end,
                                           estimated=False, asset_key=asset_key, partition_key=partition_key,
                                           run_id=run_id)
        else:
            rows = []
            for name, entry in entries.items():
                method, value, low, high, reliable, reason = _estimate_fields(name, entry, estimate)
                if value is not None:
                    rows.append([model_name, model_version, name, value, low, high, reliable, reason, method])
            if rows:
                conn.executemany(
                    """INSERT INTO ml_performance_metrics (model_name, model_version, metric_name, metric_value,
                           ci_low, ci_high, reliable, reliability_reason, method, data_split, window_start,
                           window_end, estimated, asset_key, partition_key, run_id)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, true, ?, ?, ?)""",
                    [[*r, SPLIT, window_start, window_end, asset_key, partition_key, run_id] for r in rows])
            out["metrics"] = len(rows)
        if estimate is not None:
            _replace(conn, "performance_estimates", asset_key, partition_key, "AND model_name = ?", [model_name])
            details = json.dumps(_plain({"calibration": estimate.get("calibration"),
                                         "support": estimate.get("support")}))
            rows = []
            for name, entry in entries.items():
                method, value, low, high, reliable, reason = _estimate_fields(name, entry, estimate)
                known = truth.get(name)
                rows.append([model_name, model_version, window_start, window_end, name, method, value, low, high,
                             reliable, reason, int(n_rows), known, labeled if known is not None else None, details,
                             asset_key, partition_key, run_id, known is not None])
            conn.executemany(
                """INSERT INTO performance_estimates (model_name, model_version, window_start, window_end,
                       metric_name, method, estimate, ci_low, ci_high, reliable, reliability_reason, n_rows,
                       realized, n_labeled, details, asset_key, partition_key, run_id, realized_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                           CASE WHEN ? THEN current_timestamp END)""", rows)
            out["estimates"] = len(rows)
            out["realized"] = sum(r[12] is not None for r in rows)
        elif realized is not None:  # labels for an estimate made earlier: it stays, beside its truth
            conn.execute(f"""UPDATE performance_estimates SET realized = NULL, n_labeled = NULL, realized_at = NULL
                             WHERE {where}""", keys)
            for name, value in truth.items():
                out["realized"] += len(conn.execute(
                    f"""UPDATE performance_estimates SET realized = ?, n_labeled = ?, realized_at = current_timestamp
                        WHERE {where} AND metric_name = ? RETURNING 1""", [value, labeled, *keys, name]).fetchall())
        return out

    return wh.write(work)


def estimate_history(wh: Warehouse, model_name: str, metric: str = "accuracy") -> pd.DataFrame:
    """Every stored estimate of ``metric`` for ``model_name``, oldest window first: the window,
    the estimate and its interval, the realized value once labels are in, the error
    (estimate - realized), whether the interval covered it, and the reliability flag and reason."""
    return wh.read(
        """SELECT window_start AS window, model_version, method, estimate, ci_low, ci_high, realized,
                  estimate - realized AS error, realized BETWEEN ci_low AND ci_high AS covered,
                  reliable, reliability_reason AS reason, n_rows, n_labeled, estimated_at, realized_at
           FROM performance_estimates WHERE model_name = ? AND metric_name = ?
           ORDER BY window_start NULLS LAST, estimated_at""", [model_name, metric])
