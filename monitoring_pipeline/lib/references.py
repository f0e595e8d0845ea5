"""Reference profiles: built once per model version, stored, and read back for every window.

The reference is the monitor's training data (its inputs profile) and the champion's
outputs on it (its outputs profile), with the champion's reference metrics and a
labeled calibration sample of its outputs on data it did not train on (see
:mod:`.estimation_inputs`). Windows are judged against the stored profiles; the
reference data is never re-read for that.

A version promoted by a retraining may be judged against something else: its baseline
(``set_baseline``, the monitor's ``reference_on_promotion``) is the labeled traffic it
was validated on, its training data, or the first window it serves; a person may set it
to served windows or back to its training data (:mod:`.baselines`). Every choice is kept
in ``artifacts`` as ``reference_baseline``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from monitoring_pipeline.core import DatasetProfile, compute_dataset_profile, evaluate_predictions
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.references import load_reference_set, store_reference_set
from monitoring_pipeline.storage.runs import save_artifact
from monitoring_pipeline.storage.traffic import read_log_window

from .estimation_inputs import reference_sample, window_sample
from .model_views import has_views, load_version, model_profiles
from .monitor_checks import BASELINE_BASES
from .monitors import Monitor
from .sources import (feature_names, labels_of, outputs_of, profile_inputs_of, reference_frame, reference_outputs,
                      typed_features)

BASELINE = "reference_baseline"  # what a promoted version's reference is (Phase 5 baseline management)


@dataclass(frozen=True)
class Reference:
    """A version's reference. ``calibration`` (its labeled sample of arrays, None when it has
    none) takes no part in comparing two references: their profiles and metrics do."""

    inputs: DatasetProfile
    outputs: DatasetProfile | None
    metrics: dict
    version: str | None
    calibration: dict | None = field(default=None, compare=False)


def profile_inputs(monitor: Monitor, frame: pd.DataFrame, features: list[str], reference=None) -> DatasetProfile:
    if monitor.modality == "tabular":
        data = typed_features(monitor, frame, features)
    else:
        data = profile_inputs_of(monitor, frame, features)
    return compute_dataset_profile(data, monitor.modality, reference=reference)


def build_reference(monitor: Monitor) -> Reference:
    frame = reference_frame(monitor)
    features = feature_names(monitor, frame)
    inputs = profile_inputs(monitor, frame, features)
    outputs, metrics = None, {}
    produced = reference_outputs(monitor, frame)
    if produced is not None:  # the outputs profile holds predictions and confidences only
        outputs = compute_dataset_profile({k: produced[k] for k in ("predictions", "confidences", "task")
                                           if k in produced}, "outputs")
        if monitor.task == "classification":
            metrics = evaluate_predictions(labels_of(produced["labels"]), labels_of(produced["predictions"]))
    return Reference(inputs, outputs, metrics, monitor.champion, reference_sample(monitor, frame, features, produced))


def store_reference(wh: Warehouse, monitor: Monitor, ref: Reference, run_id: int | None, *,
                    replace: bool = True) -> bool:
    """Store the reference whole (inputs, outputs and metrics in one transaction), replacing
    the version's earlier one; with ``replace=False`` a complete stored one is kept instead.
    Returns whether ``ref`` was stored."""
    return store_reference_set(wh, monitor.name, ref.version, inputs=ref.inputs, outputs=ref.outputs,
                               metrics=ref.metrics, run_id=run_id, replace=replace, calibration=ref.calibration)


def load_reference(wh: Warehouse, monitor: Monitor, *, calibration: bool = True) -> Reference | None:
    """The complete stored reference of the monitor's version; None if it has none (a store
    that did not finish counts as none). ``calibration=False`` leaves its sample unread."""
    found = load_reference_set(wh, monitor.name, monitor.champion, calibration=calibration)
    if found is None:
        return None
    return Reference(found.inputs, found.outputs, found.metrics, monitor.champion, found.calibration)


def set_baseline(wh: Warehouse, model_name: str, version: str, basis: str, *, window: str | None = None,
                 start: datetime | None = None, end: datetime | None = None, reason: str = "") -> None:
    """Record what ``version`` is judged against: its basis and, for a basis of served
    traffic, the window and its [start, end) in time. Appended, never replaced: the
    history of a version's baselines is kept. ``first_window`` without a window is
    pending: the first window the version serves becomes its reference."""
    payload = baseline_payload(basis, window=window, start=start, end=end, reason=reason)
    save_artifact(wh, "report", BASELINE, payload=payload, model_name=model_name, model_version=version)


def baseline_payload(basis: str, *, window: str | None = None, start: datetime | None = None,
                     end: datetime | None = None, reason: str = "", set_by: str | None = None) -> dict:
    """The record ``set_baseline`` stores; ``set_by`` names who set a baseline by hand."""
    if basis not in BASELINE_BASES:
        raise ValueError(f"reference basis must be one of {', '.join(BASELINE_BASES)}, got {basis!r}")
    payload = {"basis": basis, "window": window, "reason": reason,
               "start": start.isoformat() if start else None, "end": end.isoformat() if end else None}
    return {**payload, "set_by": set_by} if set_by else payload


def baseline_label(wh: Warehouse, model_name: str, version: str | None) -> str:
    """What a drift row of ``version`` was judged against (``ml_drift_history.baseline_period``):
    ``reference@v3``, or for a baseline set by hand e.g.
    ``windows [2026-01-05, 2026-01-07) (set by alice)@v3`` / ``training (set by bob)@v3``."""
    base = baseline_of(wh, model_name, version) if version is not None else {}
    if not base.get("set_by"):
        return f"reference@{version}"
    span = ""
    if base.get("start") and base.get("end"):
        span = " " + span_text(datetime.fromisoformat(base["start"]), datetime.fromisoformat(base["end"]))
    return f"{base['basis']}{span} (set by {base['set_by']})@{version}"


def span_text(start: datetime, end: datetime) -> str:
    """``[start, end)``, each a date when it is midnight, else to the minute (the second if it has one)."""
    show = lambda t: t.date().isoformat() if t == datetime(t.year, t.month, t.day) else t.isoformat(  # noqa: E731
        sep=" ", timespec="seconds" if t.second or t.microsecond else "minutes")
    return f"[{show(start)}, {show(end)})"


def day_span(ts: pd.Series) -> dict:
    """The whole days that ``ts`` falls in, as ``start`` and ``end`` (exclusive) for ``set_baseline``."""
    days = pd.to_datetime(ts).dt.normalize()
    return {"start": days.min().to_pydatetime(), "end": (days.max() + pd.Timedelta(days=1)).to_pydatetime()}


def baseline_of(wh: Warehouse, model_name: str, version: str | None) -> dict:
    """The latest baseline record of a version; its training data when none was recorded."""
    rows = wh.read("""SELECT payload FROM artifacts WHERE kind = 'report' AND name = ? AND model_name = ?
                      AND model_version IS NOT DISTINCT FROM ? ORDER BY created_at DESC, artifact_id DESC LIMIT 1""",
                   [BASELINE, model_name, version])
    if rows.empty:
        return {"basis": "training", "window": None, "reason": "its training data"}
    return json.loads(rows["payload"].iloc[0])


def concept_reference(wh: Warehouse, monitor: Monitor) -> tuple[pd.DataFrame, str]:
    """The labeled rows the feature-label relation of the monitor's version is compared
    with, and what they are: the labeled traffic of its baseline window when its reference
    is served traffic (``validation``, ``first_window``, ``windows``), else the monitor's reference data."""
    base = baseline_of(wh, monitor.name, monitor.champion) if monitor.model is not None else {}
    if base.get("basis") in ("validation", "first_window", "windows") and base.get("start") and base.get("end"):
        frame = read_log_window(wh, monitor.name, datetime.fromisoformat(base["start"]),
                                datetime.fromisoformat(base["end"]))
        frame = frame[frame["label"].notna()].reset_index(drop=True)
        if len(frame):
            return frame, f"{base['basis']} {base['window']}"
    return reference_frame(monitor), "reference data"


def window_profiles(wh: Warehouse, monitor: Monitor, served: pd.DataFrame, features: list[str],
                    reference: Reference | None = None) -> tuple[DatasetProfile, DatasetProfile | None]:
    """Profiles of a served window, on ``reference``'s bins: the inputs of every request, and
    the outputs of the requests the monitor's version answered (None when it answered none
    or the reference has no outputs). A served torch net on images is asked again, by its
    registered checkpoint, for its probabilities and embeddings (see :mod:`.model_views`)."""
    is_own = np.ones(len(served), dtype=bool) if monitor.champion is None else \
        (served["model_version"].astype(str) == str(monitor.champion)).to_numpy()  # as sources.version_rows
    ref_inputs, ref_outputs = (reference.inputs, reference.outputs) if reference is not None else (None, None)
    if has_views(monitor):
        inputs, outputs = model_profiles(monitor, load_version(wh, monitor.name, monitor.champion), served, features,
                                         inputs_reference=ref_inputs, outputs_reference=ref_outputs,
                                         output_rows=is_own, logged=True)
    else:
        inputs = profile_inputs(monitor, served, features, reference=ref_inputs)
        own = served[is_own]
        outputs = compute_dataset_profile(outputs_of(own["prediction"], own["confidence"], monitor.task), "outputs",
                                          reference=ref_outputs) if len(own) else None
    if reference is not None and reference.outputs is None:
        outputs = None
    return inputs, outputs


def window_reference(wh: Warehouse, monitor: Monitor, served: pd.DataFrame, features: list[str]) -> Reference:
    """A reference made of a served window: its inputs, the version's outputs on them and,
    for the labels already known, its metrics and calibration sample."""
    own = served[served["model_version"].astype(str) == str(monitor.champion)]
    inputs, outputs = window_profiles(wh, monitor, served, features)
    labeled = own[own["label"].notna()]
    metrics = {}
    if monitor.task == "classification" and len(labeled):
        metrics = evaluate_predictions(labels_of(labeled["label"]), labels_of(labeled["prediction"]))
    return Reference(inputs, outputs, metrics, monitor.champion, window_sample(wh, monitor, served, features))


def ensure_reference(wh: Warehouse, monitor: Monitor, run_id: int | None = None, *, window: str | None = None,
                     served: pd.DataFrame | None = None) -> tuple[Reference, bool]:
    """The stored reference of the monitor's version, built and stored first if it has none;
    a version whose baseline waits for its first window takes ``served`` as its reference."""
    ref = load_reference(wh, monitor)
    if ref is not None and monitor.model is not None and served is not None and len(served):
        base = baseline_of(wh, monitor.name, monitor.champion)
        if base["basis"] == "first_window" and base["window"] is None:
            ref = window_reference(wh, monitor, served, list(ref.inputs.features))
            store_reference(wh, monitor, ref, run_id)
            set_baseline(wh, monitor.name, monitor.champion, "first_window", window=window,
                         reason=f"the first window it served ({window})", **day_span(served["ts"]))
            return ref, True
    if ref is not None:
        return ref, False
    ref = build_reference(monitor)
    if store_reference(wh, monitor, ref, run_id, replace=False):
        return ref, True
    stored = load_reference(wh, monitor)  # another run stored it first: every window uses that one
    if stored is None:
        raise RuntimeError(f"the reference of {monitor.name} {monitor.champion or ''} was stored by another run "
                           "and is gone again")
    return stored, False
