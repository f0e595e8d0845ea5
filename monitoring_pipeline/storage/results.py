"""Monitoring results: drift history, performance metrics, comparisons and alerts.

Every write for an (asset, partition) replaces that partition's earlier rows in one
transaction, so re-materializing a window never duplicates it. Alerts are upserted
instead and never deleted: their ids are stable, each has a status (open ->
acknowledged -> resolved, re-opened when raised again), and an acknowledgement is
never overwritten or lost.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import pandas as pd

from monitoring_pipeline.core.alert_rules import Alert
from monitoring_pipeline.core.concept import ConceptDriftResult

from .dialect import in_list
from .schema import ALERT_STATUSES
from .warehouse import Warehouse


def _num(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _replace(conn, table: str, asset_key: str, partition_key: str, extra: str = "", params: list | None = None):
    conn.execute(f"DELETE FROM {table} WHERE asset_key = ? AND partition_key = ? {extra}",
                 [asset_key, partition_key, *(params or [])])


def replace_drift(wh: Warehouse, report: dict, drift_type: str, *, model_name: str, model_version: str | None,
                  baseline_period: str, current_period: str, asset_key: str, partition_key: str,
                  run_id: int | None) -> int:
    """Store a compare_profiles report's feature rows; returns the number written."""
    rows = [[drift_type, r["name"], r["method"], _num(r["statistic"]), _num(r["p_value_adjusted"]),
             _num(r.get("p_value")), _num(r["effect_size"]), _num(r["threshold"]), r["severity"], bool(r["drifted"]),
             baseline_period, current_period, model_name, model_version, asset_key, partition_key, run_id]
            for r in report["features"]]
    return _write_drift(wh, rows, drift_type, asset_key, partition_key)


def replace_concept_drift(wh: Warehouse, result: ConceptDriftResult, *, model_name: str,
                          model_version: str | None, baseline_period: str, current_period: str,
                          asset_key: str, partition_key: str, run_id: int | None) -> int:
    """One row per feature (its importance change) plus one per signal for the whole model
    (feature ``__model__``, method ``importance_correlation`` or ``performance_gap``) as
    ``ConceptDriftResult.signals`` describes it: its statistic, effect and threshold, the
    Holm-adjusted p-value in ``p_value`` and the permutation test's own in ``p_value_raw``."""
    common = [baseline_period, current_period, model_name, model_version, asset_key, partition_key, run_id]
    rows = [["concept", r["feature"], "importance_change", _num(r["current"]), None, None, _num(abs(r["change"])),
             None, result.severity, result.drifted, *common] for r in result.importances]
    rows += [["concept", "__model__", s["signal"], _num(s["statistic"]), _num(s["p_value_adjusted"]),
              _num(s["p_value"]), _num(s["effect"]), _num(s["threshold"]), s["severity"], s["drifted"], *common]
             for s in result.signals()]
    return _write_drift(wh, rows, "concept", asset_key, partition_key)


def _write_drift(wh, rows, drift_type, asset_key, partition_key) -> int:
    def work(conn):
        _replace(conn, "ml_drift_history", asset_key, partition_key, "AND drift_type = ?", [drift_type])
        if rows:
            conn.executemany(
                """INSERT INTO ml_drift_history (drift_type, feature_name, method, test_statistic, p_value,
                       p_value_raw, effect_size, threshold, severity, drift_detected, baseline_period,
                       current_period, model_name, model_version, asset_key, partition_key, run_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows)
        return len(rows)

    return wh.write(work)


def replace_metrics(wh: Warehouse, metrics: dict, *, model_name: str, model_version: str | None,
                    data_split: str, window_start: datetime | None, window_end: datetime | None,
                    estimated: bool, asset_key: str, partition_key: str, run_id: int | None) -> int:
    """Store the numeric entries of a metrics dict (None and nested values are skipped)."""
    return wh.write(lambda conn: write_metrics(
        conn, metrics, model_name=model_name, model_version=model_version, data_split=data_split,
        window_start=window_start, window_end=window_end, estimated=estimated, asset_key=asset_key,
        partition_key=partition_key, run_id=run_id))


def write_metrics(conn, metrics: dict, *, model_name: str, model_version: str | None, data_split: str,
                  window_start: datetime | None, window_end: datetime | None, estimated: bool, asset_key: str,
                  partition_key: str, run_id: int | None) -> int:
    """``replace_metrics`` inside the caller's transaction."""
    rows = [[model_name, model_version, name, float(value), data_split, window_start, window_end, estimated,
             asset_key, partition_key, run_id]
            for name, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)]
    _replace(conn, "ml_performance_metrics", asset_key, partition_key,
             "AND model_name = ? AND model_version IS NOT DISTINCT FROM ? AND estimated = ?",
             [model_name, model_version, estimated])
    if rows:
        conn.executemany(
            """INSERT INTO ml_performance_metrics (model_name, model_version, metric_name, metric_value,
                   data_split, window_start, window_end, estimated, asset_key, partition_key, run_id)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows)
    return len(rows)


def replace_comparison(wh: Warehouse, comparison: dict, *, model_name: str, baseline_version: str | None,
                       candidate_version: str | None, asset_key: str, partition_key: str,
                       run_id: int | None) -> int:
    rows = [[model_name, baseline_version, candidate_version, name, _num(m["baseline"]), _num(m["candidate"]),
             _num(m["delta"]), m["status"], _num(m["ci_low"]), _num(m["ci_high"]), m["significant"],
             comparison["status"], asset_key, partition_key, run_id]
            for name, m in comparison["metrics"].items()]

    def work(conn):
        _replace(conn, "model_comparisons", asset_key, partition_key)
        if rows:
            conn.executemany(
                """INSERT INTO model_comparisons (model_name, baseline_version, candidate_version, metric_name,
                       baseline_value, candidate_value, delta, status, ci_low, ci_high, significant, verdict,
                       asset_key, partition_key, run_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows)
        return len(rows)

    return wh.write(work)


def _status(value: str) -> str:
    """``value`` if it is an alert status; DuckDB cannot hold this as a CHECK added by a
    migration, so every writer passes its status through here."""
    if value not in ALERT_STATUSES:
        raise ValueError(f"alert status must be one of {ALERT_STATUSES}, not {value!r}")
    return value


def upsert_alerts(wh: Warehouse, alerts: list[Alert], *, asset_key: str, partition_key: str,
                  run_id: int | None) -> int:
    """Store what this write of (asset_key, partition_key) raises; no alert is ever deleted.

    - a new alert is inserted open;
    - a raised alert that is open is refreshed (severity, message, action, details, run_id);
    - a raised alert that was resolved is re-opened with fresh content and its resolution
      cleared; one that had been acknowledged before it was resolved goes back to
      acknowledged (its acknowledgement is kept, and so the invariant that an open alert
      has no acknowledgement);
    - a raised alert that is acknowledged keeps everything but run_id;
    - an open or acknowledged alert of this (asset_key, partition_key) that this write no
      longer raises is resolved, with the time and "no longer raised by <asset_key> (run <id>)".

    Returns the number of alerts raised (distinct ids).
    """
    latest = {a.alert_id: a for a in alerts}  # the last of repeated ids wins
    ids = list(latest)
    reason = f"no longer raised by {asset_key}" + (f" (run {run_id})" if run_id is not None else "")

    def work(conn):
        known = {r[0]: (r[1], r[2]) for r in conn.execute(
            f"""SELECT alert_id, status, acknowledged_at IS NOT NULL FROM ml_monitoring_alerts
                WHERE {in_list("alert_id", len(ids))}""", ids).fetchall()}
        for a in latest.values():
            content = [a.severity, a.message, a.recommended_action, json.dumps(a.details, default=str)]
            status, acknowledged = known.get(a.alert_id, (None, False))
            if status is None:
                conn.execute(
                    """INSERT INTO ml_monitoring_alerts (alert_id, severity, message, recommended_action, details,
                           alert_type, drift_type, model_name, model_version, affected_features, asset_key,
                           partition_key, run_id, status)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [a.alert_id, *content, a.alert_type, a.drift_type, a.model_name, a.model_version,
                     json.dumps(list(a.affected_features)), asset_key, partition_key, run_id, _status("open")])
            elif status == "acknowledged":
                conn.execute("UPDATE ml_monitoring_alerts SET run_id = ? WHERE alert_id = ?", [run_id, a.alert_id])
            else:  # open, or resolved and raised again
                back = "acknowledged" if status == "resolved" and acknowledged else "open"
                conn.execute(
                    """UPDATE ml_monitoring_alerts SET severity = ?, message = ?, recommended_action = ?,
                           details = ?, run_id = ?, status = ?, resolved_at = NULL, resolution = NULL
                       WHERE alert_id = ?""", [*content, run_id, _status(back), a.alert_id])
        conn.execute(
            f"""UPDATE ml_monitoring_alerts SET status = ?, resolved_at = current_timestamp, resolution = ?
                WHERE asset_key = ? AND partition_key = ? AND status IN ('open', 'acknowledged')
                  AND NOT {in_list("alert_id", len(ids))}""",
            [_status("resolved"), reason, asset_key, partition_key, *ids])
        return len(ids)

    return wh.write(work)


def acknowledge_alert(wh: Warehouse, alert_id: str, by: str, note: str | None = None) -> bool:
    """Mark an open alert acknowledged (it is not notified again), with an optional note; False if
    no such open alert exists."""
    return wh.write(lambda conn: conn.execute(
        """UPDATE ml_monitoring_alerts SET status = ?, acknowledged_at = current_timestamp, acknowledged_by = ?,
               acknowledged_note = ?
           WHERE alert_id = ? AND status = 'open' RETURNING alert_id""",
        [_status("acknowledged"), by, note, alert_id]).fetchone() is not None)


def resolve_alert(wh: Warehouse, alert_id: str, reason: str) -> bool:
    """Resolve an open or acknowledged alert by hand, with the reason; False if there is no
    such alert or it is already resolved. An acknowledgement is kept."""
    if not reason or not reason.strip():
        raise ValueError("a resolution needs a reason")
    return wh.write(lambda conn: conn.execute(
        """UPDATE ml_monitoring_alerts SET status = ?, resolved_at = current_timestamp, resolution = ?
           WHERE alert_id = ? AND status IN ('open', 'acknowledged') RETURNING alert_id""",
        [_status("resolved"), reason.strip(), alert_id]).fetchone() is not None)


def _alerts(wh: Warehouse, sql: str, params: list) -> pd.DataFrame:
    """Alert rows with NULLs as None: pandas reads a NULL in a text column (drift_type,
    model_version) as NaN, which is truthy and not JSON."""
    frame = wh.read(sql, params)
    return frame.astype(object).where(frame.notna(), None)


def open_alerts(wh: Warehouse, model_name: str | None = None) -> pd.DataFrame:
    """Alerts with status 'open' (neither acknowledged nor resolved), newest first."""
    return _alerts(wh, """SELECT * FROM ml_monitoring_alerts WHERE status = 'open'
                      AND (? IS NULL OR model_name = ?) ORDER BY created_at DESC, alert_id""",
                   [model_name, model_name])


def alert_history(wh: Warehouse, model_name: str | None = None) -> pd.DataFrame:
    """Every alert whatever its status, newest first."""
    return _alerts(wh, """SELECT * FROM ml_monitoring_alerts WHERE (? IS NULL OR model_name = ?)
                      ORDER BY created_at DESC, alert_id""", [model_name, model_name])


def metrics_for_run(wh: Warehouse, run_id: int) -> dict[str, float]:
    rows = wh.read("SELECT metric_name, metric_value FROM ml_performance_metrics WHERE run_id = ?", [run_id])
    return dict(zip(rows["metric_name"], rows["metric_value"]))


def previous_windows(wh: Warehouse, model_name: str, before: datetime, days: int = 7) -> dict:
    """What the ``days`` windows before ``before`` measured: the version that served the
    latest one, and the median latency p95 and error rate (None when there is none)."""
    frame = wh.read(
        """SELECT window_start, model_version, metric_name, metric_value FROM ml_performance_metrics
           WHERE model_name = ? AND data_split = 'production' AND NOT estimated
             AND window_start < ? AND window_start >= ?
             AND metric_name IN ('latency_p95_ms', 'error_rate')""", [model_name, before, before - timedelta(days=days)])
    if frame.empty:
        return {"version": None, "latency_p95_ms": None, "error_rate": None}
    latest = frame[frame["window_start"] == frame["window_start"].max()]
    medians = frame.groupby("metric_name")["metric_value"].median()
    value = lambda name: None if name not in medians or medians[name] != medians[name] else float(medians[name])  # noqa: E731
    return {"version": latest["model_version"].dropna().iloc[0] if latest["model_version"].notna().any() else None,
            "latency_p95_ms": value("latency_p95_ms"), "error_rate": value("error_rate")}


def window_alerts(wh: Warehouse, model_name: str, partition_key: str, *, asset_key: str) -> list[dict]:
    """The alerts an asset stored for a window, every status, as records."""
    return _alerts(wh, """SELECT * FROM ml_monitoring_alerts WHERE model_name = ? AND partition_key = ?
                          AND asset_key = ? ORDER BY created_at, alert_id""",
                   [model_name, partition_key, asset_key]).to_dict("records")


def drifted_inputs(wh: Warehouse, partition_key: str) -> list[dict]:
    """The window's drifted input features as stored by data_drift_report (name, method, effect
    in the method's unit, severity), most drifted relative to its threshold first."""
    rows = wh.read("""SELECT feature_name AS name, method, effect_size, severity FROM ml_drift_history
                      WHERE asset_key = 'data_drift_report' AND drift_type = 'data' AND partition_key = ?
                        AND drift_detected
                      ORDER BY effect_size IS NOT NULL, effect_size / nullif(threshold, 0) DESC NULLS FIRST""",
                   [partition_key])
    return [{k: (None if v != v else v) for k, v in r.items()} for r in rows.to_dict("records")]


def summary_versions(wh: Warehouse, model_name: str, partition_key: str) -> tuple[str, dict] | None:
    """The window's model version (the one that served most of it, whose reference judged it) and
    the rows each version served, as its latest stored monitoring_summary holds them; None before
    any summary."""
    rows = wh.read("""SELECT payload->>'model_version' AS version, payload->>'served_by' AS served_by
                      FROM artifacts WHERE name = 'monitoring_summary' AND model_name = ? AND partition_key = ?
                      ORDER BY artifact_id DESC LIMIT 1""", [model_name, partition_key])
    if rows.empty:
        return None
    return str(rows["version"][0]), json.loads(rows["served_by"][0]) if rows["served_by"][0] else {}
