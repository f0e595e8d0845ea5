"""Validation of monitors.yaml: every field's type, range and meaning, checked at load.

A bad field raises ``MonitorConfigError`` naming the model and the field (e.g.
``monitor 'flights': field 'thresholds.drift' must be a mapping, got list [1]``), so
definition loading fails with a message a person can act on.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from typing import TYPE_CHECKING

from monitoring_pipeline.alerts.routing import policy_of
from monitoring_pipeline.core.methods import DEFAULT_METHODS, METHODS
from monitoring_pipeline.core.service import SLO_DIRECTIONS

if TYPE_CHECKING:
    from .monitors import Monitor, Source

MODALITIES = ("tabular", "text", "vision")
SOURCES = ("warehouse", "file", "bundled", "parquet")  # parquet: a lake of traffic (lib/lake.py)
KINDS = ("numeric", "categorical", "datetime")
REFERENCE_BASES = ("validation", "training", "first_window")
# What a version's recorded baseline may be: a monitors.yaml basis, or served windows a person chose
# (POST /api/ml/baseline); the latter is never a monitor's reference_on_promotion.
BASELINE_BASES = (*REFERENCE_BASES, "windows")
# How a text monitor embeds its documents: core's own text profile (hashed), or all-MiniLM-L6-v2
# sentence embeddings (monitoring_pipeline.models.text_embedder, the 'embeddings' extra).
EMBEDDERS = ("hashed", "minilm")
# How eval_metrics estimates performance before labels (core.estimation): dle is for regression.
ESTIMATIONS = ("pape", "cbpe", "dle")
RETRAINING_FIELDS = ("enabled", "cooldown_hours", "persist_hours", "max_accuracy_drop", "estimate_windows")
DRIFT_FIELDS = ("method", "threshold", "alert")  # core.drift's per-key spec; threshold is the warn level
COLUMN_TYPES = ("VARCHAR", "DOUBLE", "BIGINT", "INTEGER", "BOOLEAN", "DATE", "TIMESTAMP")  # CSV columns
# A model's name becomes a folder (data/models/<name>/, data/reports/<name>/) and part of partition keys.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class MonitorConfigError(ValueError):
    """A monitors.yaml entry is invalid."""


def fail(model: str, where: str, problem: str):
    raise MonitorConfigError(f"monitor {model!r}: field {where!r} {problem}")


def build_section(cls, data, model: str, where: str):
    if not isinstance(data, dict):
        fail(model, where, f"must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        fail(model, f"{where}.{unknown[0]}" if where else unknown[0], f"is not a known field ({', '.join(sorted(known))})")
    try:
        return cls(**data)
    except TypeError as error:  # a required field is missing
        raise MonitorConfigError(f"monitor {model!r}: field {where or 'monitor'!r}: {error}") from error


def _real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def check_number(model, where, value, low=-math.inf, high=math.inf, integer=False):
    ok = _real(value) and (isinstance(value, int) or math.isfinite(value)) and low <= value <= high
    if not ok or (integer and int(value) != value):
        kind = "an integer" if integer else "a finite number"
        fail(model, where, f"must be {kind} in [{low}, {high}], got {value!r}")


def _mapping(model, where, value, hint: str = "") -> dict:
    if not isinstance(value, dict):
        fail(model, where, f"must be a mapping{hint}, got {type(value).__name__} {value!r:.80}")
    bad = next((k for k in value if not isinstance(k, str)), None)
    if bad is not None:
        fail(model, f"{where}.{bad}", "must be a string key (quote it in the YAML)")
    return value


def _text(model, where, value, optional=False) -> None:
    if not (optional and value is None) and not (isinstance(value, str) and value):
        fail(model, where, f"must be a non-empty string, got {value!r}")


def check_name(model, where, value) -> None:
    if not isinstance(value, str) or not NAME.fullmatch(value) or ".." in value:
        fail(model, where, "must be 1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit "
                            f"and without '..' (it names folders), got {value!r}")


def _check_source(model: str, where: str, s: Source, *, traffic: bool) -> None:
    for key, optional in (("source", False), ("path", True), ("dataset", True), ("ts_column", False)):
        _text(model, f"{where}.{key}", getattr(s, key), optional)
    if s.source not in SOURCES:
        fail(model, f"{where}.source", f"must be one of {', '.join(SOURCES)}, got {s.source!r}")
    if s.source == "warehouse" and not traffic:
        fail(model, f"{where}.source", "cannot be the warehouse for a reference; use file or bundled")
    if s.source in ("file", "parquet") and not s.path:
        fail(model, f"{where}.path", f"is required for a {s.source} source")
    if s.source == "parquet" and not traffic:
        fail(model, f"{where}.source", "parquet is a traffic lake; a Parquet reference is a file source")
    if s.source == "bundled":
        from monitoring_pipeline.demo.bundled import BUNDLED  # the demo data sets, by name

        if s.dataset not in BUNDLED:
            fail(model, f"{where}.dataset", f"must be one of {', '.join(BUNDLED)}, got {s.dataset!r}")
    check_number(model, f"{where}.rows_per_day", s.rows_per_day, 1, 1_000_000, integer=True)
    for column, kind in _mapping(model, f"{where}.columns", s.columns).items():
        if s.source != "file" or s.path.endswith(".parquet"):
            fail(model, f"{where}.columns", "applies to CSV file sources only (Parquet files carry their types)")
        if not isinstance(kind, str) or kind.upper() not in COLUMN_TYPES:
            fail(model, f"{where}.columns.{column}", f"must be one of {', '.join(COLUMN_TYPES)}, got {kind!r}")


def check_monitor(m: Monitor) -> None:
    name = m.name
    if m.modality not in MODALITIES:
        fail(name, "modality", f"must be one of {', '.join(MODALITIES)}, got {m.modality!r}")
    if m.task not in ("classification", "regression"):
        fail(name, "task", f"must be classification or regression, got {m.task!r}")
    _check_source(name, "reference", m.reference, traffic=False)
    _check_source(name, "traffic", m.traffic, traffic=True)
    if not isinstance(m.scheduled, bool):
        fail(name, "scheduled", f"must be true or false, got {m.scheduled!r}")
    for key in ("label_column", "prediction_column"):
        _text(name, key, getattr(m, key))
    for key in ("input_column", "champion", "candidate"):
        _text(name, key, getattr(m, key), optional=True)
    if m.modality != "tabular" and not m.input_column:
        fail(name, "input_column", f"is required for a {m.modality} monitor")
    if m.image_layout not in ("NCHW", "NHWC"):
        fail(name, "image_layout", f"must be NCHW (channels first) or NHWC (channels last), got {m.image_layout!r}")
    _check_embedder(m)
    _check_estimation(m)
    _check_columns(m)
    _check_thresholds(m)
    _check_alerts(m)
    _check_retraining(m)
    if m.reference_on_promotion not in REFERENCE_BASES:
        fail(name, "reference_on_promotion",
              f"must be one of {', '.join(REFERENCE_BASES)}, got {m.reference_on_promotion!r}")
    if m.model is not None:
        _check_model(m)


def _check_estimation(m: Monitor) -> None:
    if m.estimation not in ESTIMATIONS:
        fail(m.name, "estimation", f"must be one of {', '.join(ESTIMATIONS)}, got {m.estimation!r}")
    if m.estimation == "dle" and m.task != "regression":
        fail(m.name, "estimation", "dle estimates regression models; use pape or cbpe for classification")


def _check_embedder(m: Monitor) -> None:
    name = m.name
    if m.embedder not in EMBEDDERS:
        fail(name, "embedder", f"must be one of {', '.join(EMBEDDERS)}, got {m.embedder!r}")
    if m.embedder != "hashed" and m.modality != "text":
        fail(name, "embedder", f"applies to text monitors only; this one is {m.modality}")
    if m.embedder == "minilm":
        from monitoring_pipeline.models.text_embedder import INSTALL_HINT, available

        if not available():
            fail(name, "embedder", f"is minilm, but {INSTALL_HINT}")


def _check_columns(m: Monitor) -> None:
    name = m.name
    if m.features is not None:
        features = _mapping(name, "features", m.features, " of column -> numeric | categorical | datetime (leave it out "
                            "to use every reference column)")
        if not features and m.modality == "tabular":
            fail(name, "features", "names no column; leave it out to use every reference column")
        for feature, kind in features.items():
            if kind not in KINDS:
                fail(name, f"features.{feature}", f"must be numeric, categorical or datetime, got {kind!r}")
    for feature, bounds in _mapping(name, "ranges", m.ranges).items():
        if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(map(_real, bounds))
                and bounds[0] <= bounds[1]):
            fail(name, f"ranges.{feature}", f"must be [low, high], numbers with low <= high (.inf for an open "
                                             f"end), got {bounds!r}")


def _check_thresholds(m: Monitor) -> None:
    name, t = m.name, m.thresholds
    check_number(name, "thresholds.alpha", t.alpha, 1e-9, 0.5)
    if t.correction not in ("holm", "bh"):
        fail(name, "thresholds.correction", f"must be holm or bh, got {t.correction!r}")
    for key, spec in _mapping(name, "thresholds.drift", t.drift).items():
        if key not in DEFAULT_METHODS and m.features is not None and key not in m.features:
            fail(name, f"thresholds.drift.{key}", "is neither a feature kind nor a feature of this monitor")
        _check_drift_spec(m, key, spec)
    check_number(name, "thresholds.regression_tolerance", t.regression_tolerance, 0, 1)
    check_number(name, "thresholds.improvement_margin", t.improvement_margin, 0, 1)
    check_number(name, "thresholds.max_missing_share", t.max_missing_share, 0, 1)
    check_number(name, "thresholds.max_infinite_share", t.max_infinite_share, 0, 1)
    check_number(name, "thresholds.min_labeled_rows", t.min_labeled_rows, 1, 10**9, integer=True)
    for slo, bound in _mapping(name, "thresholds.slo", t.slo).items():
        if slo not in SLO_DIRECTIONS:
            fail(name, f"thresholds.slo.{slo}", f"is not an SLO ({', '.join(SLO_DIRECTIONS)})")
        if bound is not None:
            check_number(name, f"thresholds.slo.{slo}", bound, 0, math.inf if slo == "latency_p95_ms" else 1)


def _check_drift_spec(m: Monitor, key: str, spec) -> None:
    """One ``thresholds.drift`` entry, as core.drift reads it: a method name, a warn threshold,
    or a mapping of DRIFT_FIELDS; the threshold it resolves to must not exceed the alert one."""
    where = f"thresholds.drift.{key}"
    short = not isinstance(spec, dict)  # a bare method or number: its problems name the entry itself
    if isinstance(spec, str):
        spec = {"method": spec}
    elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
        spec = {"threshold": spec}
    elif short:
        fail(m.name, where, f"must be a method name, a number or a mapping of {', '.join(DRIFT_FIELDS)}, "
                             f"got {spec!r}")
    at = lambda part: where if short else f"{where}.{part}"  # noqa: E731
    unknown = sorted(str(k) for k in spec if k not in DRIFT_FIELDS)
    if unknown:
        fail(m.name, at(unknown[0]), f"is not a known field ({', '.join(DRIFT_FIELDS)}; threshold is the warn level)")
    kinds = ((key,) if key in DEFAULT_METHODS else (m.features[key],) if key in (m.features or {})
             else tuple(DEFAULT_METHODS))
    if "method" in spec:
        method = METHODS.get(spec["method"]) if isinstance(spec["method"], str) else None
        if method is None:
            fail(m.name, at("method"), f"names an unknown method {spec['method']!r} ({', '.join(METHODS)})")
        if not method.kinds & set(kinds):
            fail(m.name, at("method"), f"{method.name} does not apply to {' or '.join(kinds)} features "
                                        f"(it takes {', '.join(sorted(method.kinds))})")
        methods = {method.name}
    else:
        methods = {DEFAULT_METHODS[k] for k in kinds}
    for part in ("threshold", "alert"):
        if part in spec:
            check_number(m.name, at(part), spec[part], 0)
    threshold, alert = spec.get("threshold"), spec.get("alert")
    if len(methods) == 1:  # core's defaults, as core.drift resolves them
        method = METHODS[next(iter(methods))]
        threshold = spec.get("threshold", method.threshold)
        alert = spec.get("alert", max(threshold, method.alert))
    if threshold is not None and alert is not None and alert < threshold:
        fail(m.name, at("alert"), f"{alert} is below the warn threshold {threshold}; need threshold <= alert")


def _check_alerts(m: Monitor) -> None:
    name, alerts = m.name, _mapping(m.name, "alerts", m.alerts)
    if not isinstance(alerts.get("routes", []), list):
        fail(name, "alerts.routes", f"must be a list of channels, got {alerts['routes']!r}")
    _mapping(name, "alerts.rules", alerts.get("rules") or {})
    check_number(name, "alerts.dedupe_hours", alerts.get("dedupe_hours", 24), 0)
    try:
        policy_of(m.alerts)
    except ValueError as error:  # "alerts.<field>: <problem>"
        where, _, problem = str(error).partition(": ")
        fail(name, where, problem)


def _check_retraining(m: Monitor) -> None:
    name = m.name
    unknown = sorted(set(_mapping(name, "retraining", m.retraining)) - set(RETRAINING_FIELDS))
    if unknown:
        fail(name, f"retraining.{unknown[0]}", f"is not a known field ({', '.join(RETRAINING_FIELDS)})")
    if not isinstance(m.retraining.get("enabled", True), bool):
        fail(name, "retraining.enabled", "must be true or false")
    for key in ("cooldown_hours", "persist_hours"):
        check_number(name, f"retraining.{key}", m.retraining.get(key, 24), 0)
    check_number(name, "retraining.max_accuracy_drop", m.retraining.get("max_accuracy_drop", 0.05), 0, 1)
    check_number(name, "retraining.estimate_windows", m.retraining.get("estimate_windows", 3), 0, integer=True)


def _check_model(m: Monitor) -> None:
    from monitoring_pipeline.models.training import KINDS as MODEL_KINDS  # torch only for served models

    name = m.name
    if m.model.kind not in MODEL_KINDS:
        fail(name, "model.kind", f"must be one of {', '.join(MODEL_KINDS)}, got {m.model.kind!r}")
    if m.champion is not None:
        fail(name, "champion", "must be left out when a served model is declared (the registry holds it)")
    _mapping(name, "model.params", m.model.params)
    check_number(name, "model.seed", m.model.seed, 0, 2**32 - 1, integer=True)
    check_number(name, "model.recent_days", m.model.recent_days, 1, 10_000, integer=True)
    check_number(name, "model.holdout_days", m.model.holdout_days, 1, m.model.recent_days, integer=True)
    check_number(name, "model.promotion_margin", m.model.promotion_margin, 0, 1)
