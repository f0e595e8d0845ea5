"""What the retraining policy reads (windows' findings, past decisions) and what it leaves
(every decision, in ``retraining_requests``)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from monitoring_pipeline.core.retraining import Decision, Observation, PastDecision

from .results import _num
from .warehouse import Warehouse

_RANK = {"ok": 0, "info": 0, "warn": 1, "alert": 2}
_LEVEL = {0: "ok", 1: "warn", 2: "alert"}


def record_decision(wh: Warehouse, decision: Decision, decided_at: datetime, *,
                    dagster_run_id: str | None = None, details: dict | None = None) -> str:
    """Store a decision on an incident; returns its request_id."""
    if decision.trigger is None:
        raise ValueError("only decisions on an incident are recorded; this one had no trigger")
    request_id = hashlib.sha1(f"{decision.run_key}|{decided_at.isoformat()}".encode()).hexdigest()[:20]
    payload = {"priority": decision.priority, "window": decision.window, **(details or {})}
    wh.write(lambda conn: conn.execute(
        """INSERT INTO retraining_requests (request_id, model_name, trigger, reason, decision, run_key,
               dagster_run_id, details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [request_id, decision.model_name, decision.trigger, decision.reason,
         "launched" if decision.launch else "skipped", decision.run_key, dagster_run_id, json.dumps(payload),
         decided_at]))
    return request_id


def past_decisions(wh: Warehouse, model_name: str) -> list[PastDecision]:
    frame = wh.read("SELECT run_key, decision, created_at FROM retraining_requests WHERE model_name = ? "
                    "ORDER BY created_at", [model_name])
    return [PastDecision(r.run_key, r.decision, r.created_at.to_pydatetime()) for r in frame.itertuples()]


def observations(wh: Warehouse, model_name: str, baseline_accuracy: float | None,
                 version: str | None = None) -> list[Observation]:
    """One observation per monitored day of ``model_name`` (of its ``version`` only, when
    given: a new champion starts with a clean slate): the worst drifted feature's
    severity for input and concept drift, the realized accuracy once labels are in, and
    before that the label-free estimate (its interval and whether it is reliable; an estimate
    stored without the flag counts as unreliable)."""
    drift = wh.read(
        """SELECT current_period AS day, drift_type,
                  max(CASE WHEN NOT drift_detected THEN 0 WHEN severity = 'alert' THEN 2
                           WHEN severity = 'warn' THEN 1 ELSE 0 END) AS level
           FROM ml_drift_history
           WHERE model_name = ? AND drift_type IN ('data', 'concept') AND (? IS NULL OR model_version = ?)
           GROUP BY current_period, drift_type""", [model_name, version, version])
    accuracy = wh.read(
        """SELECT CAST(window_start AS DATE)::VARCHAR AS day, estimated, avg(metric_value) AS value,
                  min(ci_low) AS low, max(ci_high) AS high, bool_and(coalesce(reliable, false)) AS reliable
           FROM ml_performance_metrics
           WHERE model_name = ? AND metric_name = 'accuracy' AND data_split = 'production'
             AND window_start IS NOT NULL AND (? IS NULL OR model_version = ?)
           GROUP BY CAST(window_start AS DATE)::VARCHAR, estimated""", [model_name, version, version])
    days = sorted(set(drift["day"]) | set(accuracy["day"]))
    levels = {(r.day, r.drift_type): int(r.level) for r in drift.itertuples()}
    realized = {r.day: float(r.value) for r in accuracy.itertuples() if not r.estimated}
    guesses = {r.day: r for r in accuracy.itertuples() if r.estimated and r.day not in realized}  # labels first
    return [Observation(window=d, at=datetime.fromisoformat(d) + timedelta(days=1),
                        drift=_LEVEL[levels.get((d, "data"), 0)], concept=_LEVEL[levels.get((d, "concept"), 0)],
                        accuracy=realized.get(d),
                        baseline_accuracy=baseline_accuracy if d in realized or d in guesses else None,
                        **({"estimated_accuracy": _num(guesses[d].value), "estimate_low": _num(guesses[d].low),
                            "estimate_high": _num(guesses[d].high), "estimate_reliable": bool(guesses[d].reliable)}
                           if d in guesses else {}))
            for d in days]
