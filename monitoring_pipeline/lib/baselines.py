"""Baselines set by hand (Phase 5 baseline management, ``POST /api/ml/baseline``).

``rebaseline`` sets the reference of a model's current champion version to the traffic
that version served in a chosen range of time, or back to its training data, and records
who did it and when (``baseline_changes``, and the version's ``reference_baseline``
record, which every later drift row names in its ``baseline_period``). The windows the
version serves from then on are judged against it; drift rows already stored keep what
they were judged against.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Literal

import pandas as pd

from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.baselines import insert_baseline_change, load_training_reference
from monitoring_pipeline.storage.references import store_reference_set
from monitoring_pipeline.storage.runs import insert_artifact
from monitoring_pipeline.storage.traffic import read_log_window

from .monitors import Monitor
from .references import (BASELINE, Reference, baseline_payload, build_reference, load_reference, span_text,
                         window_reference)
from .sources import Window, feature_names, reference_frame, served_rows, serving_monitor, version_rows, window_frame

# The fewest served rows a reference may be made of: its numeric profiles have quantile bins and
# its drift tests need a few rows in each to say anything.
MIN_ROWS = 30
MAX_DAYS = 366  # days of replayed or file traffic one baseline reads, window by window


class BaselineError(ValueError):
    """The baseline asked for cannot be set: a bad range, too little traffic of the champion in it,
    no champion, no training reference kept."""


def served_range(wh: Warehouse, monitor: Monitor, start: datetime, end: datetime) -> pd.DataFrame:
    """The requests ``monitor`` saw in [start, end), each answered by the version that served it
    (shadow rows dropped): from the inference log in one read, from other sources window by
    window (at most ``MAX_DAYS`` of them)."""
    if monitor.traffic.source == "warehouse":
        frame = read_log_window(wh, monitor.name, start, end)
        return served_rows(frame, monitor) if len(frame) else frame
    days = (end.date() - start.date()).days + (0 if end == _midnight(end) else 1)
    if days > MAX_DAYS:
        raise BaselineError(f"{span_text(start, end)} spans {days} days of {monitor.traffic.source} traffic; "
                            f"a baseline reads at most {MAX_DAYS}")
    frames = []
    for i in range(days):
        day = start.date() + timedelta(days=i)
        frame = window_frame(monitor, wh, Window(day, monitor.name, f"{day.isoformat()}|{monitor.name}"))
        if len(frame):
            ts = pd.to_datetime(frame["ts"])
            frames.append(frame[(ts >= start) & (ts < end)])
    frames = [f for f in frames if len(f)]
    return served_rows(pd.concat(frames, ignore_index=True), monitor) if frames else pd.DataFrame()


def _midnight(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day)


def as_datetime(value: date | datetime) -> datetime:
    """A day as its midnight; a time as given, in UTC without its time zone (as the warehouse keeps times)."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=None)
    try:
        return (value - value.utcoffset()).replace(tzinfo=None)
    except OverflowError:
        raise BaselineError(f"{value.isoformat()} is out of range in UTC") from None


def rebaseline(wh: Warehouse, monitor: Monitor, *, basis: Literal["windows", "training"],
               start: date | datetime | None = None, end: date | datetime | None = None, set_by: str,
               note: str | None = None) -> dict:
    """Set the reference of the monitor's current champion version and record it.

    ``windows``: the traffic the version served in [start, end): its inputs, its outputs,
    and the metrics and calibration sample of the labels known so far. ``training``: the
    version's training reference (a registry-served version's as kept when it was trained;
    else built again from the monitor's reference data). The reference, the version's
    baseline record and a ``baseline_changes`` row are written in one transaction.
    BaselineError (a ValueError) names the problem: a range for ``training``, an empty,
    reversed or too long range, too few rows of the version in it, no champion, no training
    reference kept.
    """
    if not set_by or not set_by.strip():
        raise BaselineError("set_by must name who sets the baseline")
    monitor = serving_monitor(wh, monitor)
    version = monitor.champion
    if monitor.model is not None and version is None:
        raise BaselineError(f"model {monitor.name!r} has no champion in the registry yet")
    if basis == "windows":
        if start is None or end is None:
            raise BaselineError("basis 'windows' needs start and end")
        start, end = as_datetime(start), as_datetime(end)
        if not start < end:
            raise BaselineError(f"start must be before end, got [{start.isoformat()}, {end.isoformat()})")
        served = served_range(wh, monitor, start, end)
        own = version_rows(served, version) if len(served) else served
        if len(own) < MIN_ROWS:
            raise BaselineError(f"{monitor.name} {version or ''} served {len(own)} requests in "
                                f"{span_text(start, end)}; a baseline needs at least {MIN_ROWS}")
        ref = window_reference(wh, monitor, own, _features(wh, monitor))
        window = span_text(start, end)
        reason = f"the {len(own)} requests {version} served in {window}"
        rows = len(own)
    elif basis == "training":
        if start is not None or end is not None:
            raise BaselineError("basis 'training' takes no start or end: it is the version's training data")
        ref = _training_reference(wh, monitor)
        window, reason, rows = None, f"its training data ({ref.inputs.n_rows} rows)", ref.inputs.n_rows
    else:
        raise BaselineError(f"basis must be 'windows' or 'training', got {basis!r}")
    note = note or None
    payload = baseline_payload(basis, window=window, start=start, end=end, reason=reason, set_by=set_by)
    recorded = {}

    def record(conn) -> None:
        insert_artifact(conn, "report", BASELINE, payload=payload, model_name=monitor.name, model_version=version)
        recorded["set_at"] = insert_baseline_change(conn, monitor.name, version, basis, window_start=start,
                                                    window_end=end, rows=rows, set_by=set_by, note=note)

    store_reference_set(wh, monitor.name, version, inputs=ref.inputs, outputs=ref.outputs, metrics=ref.metrics,
                        run_id=None, calibration=ref.calibration, then=record)
    return {"model": monitor.name, "version": version, "basis": basis, "start": start, "end": end, "rows": rows,
            "set_by": set_by, "note": note, "set_at": recorded["set_at"], "reason": reason,
            "reference": {"features": list(ref.inputs.features), "rows": ref.inputs.n_rows,
                          "outputs": ref.outputs is not None, "metrics": _numbers(ref.metrics),
                          "calibration_rows": _sample_rows(ref.calibration)}}


def _features(wh: Warehouse, monitor: Monitor) -> list[str]:
    """The features the version's references profile: its stored reference's, else the reference data's."""
    stored = load_reference(wh, monitor, calibration=False)
    return list(stored.inputs.features) if stored is not None else feature_names(monitor, reference_frame(monitor))


def _training_reference(wh: Warehouse, monitor: Monitor) -> Reference:
    if monitor.model is None:  # a configured model: its reference data is its training data, built again
        return build_reference(monitor)
    kept = load_training_reference(wh, monitor.name, monitor.champion)
    if kept is None:
        raise BaselineError(f"{monitor.name} {monitor.champion} has no training reference kept (it was trained "
                            "before versions kept one); set a baseline of served windows instead")
    return Reference(kept.inputs, kept.outputs, kept.metrics, monitor.champion, kept.calibration)


def _numbers(metrics: dict) -> dict[str, float]:
    """The metrics that are numbers (those stored as reference metrics)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _sample_rows(sample: dict | None) -> int:
    if not sample:
        return 0
    labels = sample.get("y_true")
    return 0 if labels is None else len(labels)
