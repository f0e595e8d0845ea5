"""The latest monitoring results per model, as a Prometheus text file for node_exporter's
textfile collector (``data/metrics/monitoring.prom`` unless $MONITORING_METRICS says otherwise).

``write_metrics`` reads the warehouse after a monitoring run and rewrites the whole file
from a fresh registry, so it holds only models the warehouse knows and only values it has:
a missing or NaN value is left out, never reported as 0. Realized production metrics come
from the latest window that has them (by ``window_start``, then ``measured_at``). The
estimated accuracy (with its interval and reliability flag) is written only while its window
is newer than the latest realized one: once labels arrive, the realized value is the answer.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from monitoring_pipeline.storage.warehouse import Warehouse

from .settings import metrics_path

__all__ = ["last_success", "metrics_path", "registry", "write_metrics"]

SEVERITIES = ("critical", "warning", "info")
QUANTILES = {"latency_p50_ms": "0.5", "latency_p95_ms": "0.95", "latency_p99_ms": "0.99"}
_METRIC_NAMES = ["accuracy", "error_rate", *QUANTILES]

# SQL both warehouse dialects (DuckDB, PostgreSQL) accept: window functions in subqueries instead of
# QUALIFY, explicit GROUP BY, `= ANY(?)` for a list, and results cast to DOUBLE PRECISION (PostgreSQL's
# avg and extract give NUMERIC, which would arrive as Decimal).
_MODELS = """SELECT DISTINCT model_name FROM (
        SELECT model_name FROM runs UNION ALL SELECT model_name FROM ml_performance_metrics
        UNION ALL SELECT model_name FROM ml_drift_history UNION ALL SELECT model_name FROM ml_monitoring_alerts) AS m
    WHERE model_name IS NOT NULL ORDER BY model_name"""

_LATEST_METRICS = """SELECT model_name, model_version, metric_name, estimated, metric_value, window_start,
           ci_low, ci_high, reliable
    FROM (SELECT *, row_number() OVER (PARTITION BY model_name, metric_name, estimated
                                       ORDER BY window_start DESC NULLS LAST, measured_at DESC) AS latest
          FROM ml_performance_metrics WHERE data_split = 'production' AND metric_name = ANY(?)) AS m
    WHERE latest = 1"""

# Every feature row of the latest current_period per model and drift type. An effect size of
# +-inf or NaN is left out of the max: abs(NaN) < inf is false in both dialects (NaN sorts last).
_LATEST_DRIFT = """SELECT model_name, drift_type,
           max(effect_size) FILTER (WHERE abs(effect_size) < CAST('Infinity' AS DOUBLE PRECISION)) AS drift_max,
           CAST(avg(CASE WHEN drift_detected THEN 1 ELSE 0 END) AS DOUBLE PRECISION) AS drift_share
    FROM (SELECT model_name, drift_type, effect_size, drift_detected, current_period,
                 max(current_period) OVER (PARTITION BY model_name, drift_type) AS latest_period
          FROM ml_drift_history) AS h
    WHERE current_period = latest_period
    GROUP BY model_name, drift_type"""

_OPEN_ALERTS = """SELECT model_name, severity, count(*) AS open_alerts FROM ml_monitoring_alerts
    WHERE status = 'open' GROUP BY model_name, severity"""

# The warehouse records when a run started but neither its end nor its status, and a run row
# is created as a window's first step begins; a run that went on to store results counts as a
# success. started_at holds the session's wall time (the engine's current_timestamp), so it
# is read back through TIMESTAMPTZ to get the true instant; its unix time is computed here, not by
# the engine: DuckDB's extract(epoch ...) and PostgreSQL's (exact NUMERIC, cast) differ in the last
# bit for some microseconds (1796077277.7325792 against 1796077277.732579 for the same instant).
_LAST_SUCCESS = """SELECT model_name, CAST(max(started_at) AS TIMESTAMPTZ) AS last_started
    FROM runs
    WHERE model_name IS NOT NULL AND run_id IN (
        SELECT run_id FROM ml_performance_metrics UNION SELECT run_id FROM ml_drift_history
        UNION SELECT run_id FROM model_comparisons UNION SELECT run_id FROM artifacts)
    GROUP BY model_name"""


def _known(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _set(gauge: Gauge, value, **labels: str) -> None:
    if _known(value):
        gauge.labels(**labels).set(float(value))


def last_success(wh: Warehouse) -> dict[str, float]:
    """Per model, the unix time of the start of its latest run that stored results (the
    ``last_success_timestamp_seconds`` gauge; the HTTP API's health judges its age)."""
    return {r.model_name: pd.Timestamp(r.last_started).timestamp() for r in wh.read(_LAST_SUCCESS).itertuples()
            if not pd.isna(r.last_started)}


def registry(wh: Warehouse) -> CollectorRegistry:
    """A fresh registry of the warehouse's latest results: what the textfile holds and what the
    HTTP API's ``/metrics`` serves."""
    collected = CollectorRegistry()

    def gauge(name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(f"ml_monitoring_{name}", doc, ["model", *labels], registry=collected)

    accuracy = gauge("accuracy", "Latest realized production accuracy (labels in).", "version")
    estimated = gauge("estimated_accuracy", "Estimated production accuracy of a window newer than the latest "
                                            "realized one (labels pending).", "version")
    estimated_low = gauge("estimated_accuracy_low", "Lower end of the estimated accuracy's 95% interval.", "version")
    estimated_high = gauge("estimated_accuracy_high", "Upper end of the estimated accuracy's 95% interval.", "version")
    reliable = gauge("estimate_reliable", "1 if the estimated accuracy can be trusted (the window's inputs are "
                                          "within the reference's support), else 0.", "version")
    latency = gauge("latency_ms", "Latest production latency quantile, milliseconds.", "quantile")
    error_rate = gauge("error_rate", "Latest production share of failed requests.")
    drift_max = gauge("drift_max", "Largest feature effect size in the latest drift window.", "drift_type")
    drift_share = gauge("drift_share", "Share of features flagged in the latest drift window.", "drift_type")
    open_alerts = gauge("open_alerts", "Alerts with status open (neither acknowledged nor resolved).",
                        "severity")
    success = gauge("last_success_timestamp_seconds", "Start of the latest run that stored results.")

    latest = wh.read(_LATEST_METRICS, [_METRIC_NAMES])
    realized_at = {r.model_name: r.window_start for r in latest.itertuples()
                   if r.metric_name == "accuracy" and not r.estimated}
    for r in latest.itertuples():
        version = r.model_version if _known(r.model_version) else ""
        if r.metric_name == "accuracy" and not r.estimated:
            _set(accuracy, r.metric_value, model=r.model_name, version=version)
        elif r.metric_name == "accuracy":
            labeled = realized_at.get(r.model_name)
            if r.model_name in realized_at and (pd.isna(r.window_start) or pd.isna(labeled)
                                                or r.window_start <= labeled):
                continue  # labels arrived for this window or a later one: the realized value is the answer
            for g, value in ((estimated, r.metric_value), (estimated_low, r.ci_low), (estimated_high, r.ci_high),
                             (reliable, None if pd.isna(r.reliable) else float(bool(r.reliable)))):
                _set(g, value, model=r.model_name, version=version)
        elif r.estimated:
            continue  # only accuracy is estimated before labels; the service metrics are measured
        elif r.metric_name == "error_rate":
            _set(error_rate, r.metric_value, model=r.model_name)
        else:
            _set(latency, r.metric_value, model=r.model_name, quantile=QUANTILES[r.metric_name])
    for r in wh.read(_LATEST_DRIFT).itertuples():
        _set(drift_max, r.drift_max, model=r.model_name, drift_type=r.drift_type)
        _set(drift_share, r.drift_share, model=r.model_name, drift_type=r.drift_type)
    counts = {(r.model_name, r.severity): int(r.open_alerts) for r in wh.read(_OPEN_ALERTS).itertuples()}
    for model in wh.read(_MODELS)["model_name"]:
        for severity in SEVERITIES:
            open_alerts.labels(model=model, severity=severity).set(counts.get((model, severity), 0))
    for model, at in last_success(wh).items():
        _set(success, at, model=model)
    return collected


def write_metrics(wh: Warehouse, path: Path | None = None) -> Path:
    """Rewrite the textfile-collector file from the warehouse; returns its path.

    ``write_to_textfile`` writes a temporary file beside ``path`` and renames it over the
    old one, so the collector never reads a half-written file.
    """
    path = Path(path) if path is not None else metrics_path()
    collected = registry(wh)  # read everything before touching the file
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), collected)
    return path
