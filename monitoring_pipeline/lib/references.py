"""Reference profiles: built once per model version, stored, and read back for every window.

The reference is the monitor's training data (its inputs profile) and the champion's
outputs on it (its outputs profile), with the champion's reference metrics. Windows
are judged against the stored profiles; the reference data is never re-read for that.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from monitoring_pipeline.core import DatasetProfile, compute_dataset_profile, evaluate_predictions
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.results import replace_metrics
from monitoring_pipeline.storage.runs import latest_profile, save_profile

from .monitors import Monitor
from .sources import feature_names, labels_of, model_inputs_of, reference_frame, reference_outputs

ASSET = "reference_profile"
INPUTS, OUTPUTS = "reference_inputs", "reference_outputs"


@dataclass(frozen=True)
class Reference:
    inputs: DatasetProfile
    outputs: DatasetProfile | None
    metrics: dict
    version: str | None


def typed_features(monitor: Monitor, frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The feature columns, with declared kinds enforced (categorical as labels, numeric as numbers)."""
    out = frame[features].copy()
    for name, kind in (monitor.features or {}).items():
        if kind == "categorical":
            out[name] = out[name].astype(object).where(out[name].notna(), None).map(
                lambda v: v if v is None else str(v))
        else:
            out[name] = pd.to_numeric(out[name], errors="coerce")
    return out


def profile_inputs(monitor: Monitor, frame: pd.DataFrame, features: list[str], reference=None) -> DatasetProfile:
    if monitor.modality == "tabular":
        data = typed_features(monitor, frame, features)
    else:
        data = model_inputs_of(monitor, frame, features)
    return compute_dataset_profile(data, monitor.modality, reference=reference)


def build_reference(monitor: Monitor) -> Reference:
    frame = reference_frame(monitor)
    features = feature_names(monitor, frame)
    inputs = profile_inputs(monitor, frame, features)
    outputs, metrics = None, {}
    produced = reference_outputs(monitor, frame)
    if produced is not None:
        outputs = compute_dataset_profile({k: v for k, v in produced.items() if k != "labels"}, "outputs")
        if monitor.task == "classification":
            metrics = evaluate_predictions(labels_of(produced["labels"]), labels_of(produced["predictions"]))
    return Reference(inputs, outputs, metrics, monitor.champion)


def store_reference(wh: Warehouse, monitor: Monitor, ref: Reference, run_id: int | None) -> None:
    keys = dict(run_id=run_id, model_name=monitor.name, model_version=ref.version, asset_key=ASSET,
                partition_key=monitor.name)
    save_profile(wh, ref.inputs, INPUTS, **keys)
    if ref.outputs is not None:
        save_profile(wh, ref.outputs, OUTPUTS, **keys)
    replace_metrics(wh, ref.metrics, model_name=monitor.name, model_version=ref.version, data_split="reference",
                    window_start=None, window_end=None, estimated=False, asset_key=ASSET,
                    partition_key=monitor.name, run_id=run_id)


def load_reference(wh: Warehouse, monitor: Monitor) -> Reference | None:
    found = latest_profile(wh, monitor.name, INPUTS, monitor.champion)
    if found is None:
        return None
    outputs = latest_profile(wh, monitor.name, OUTPUTS, monitor.champion)
    rows = wh.read("""SELECT metric_name, metric_value FROM ml_performance_metrics
                      WHERE asset_key = ? AND partition_key = ? AND model_version IS NOT DISTINCT FROM ?""",
                   [ASSET, monitor.name, monitor.champion])
    return Reference(found[1], outputs[1] if outputs else None,
                     dict(zip(rows["metric_name"], rows["metric_value"])), monitor.champion)


def ensure_reference(wh: Warehouse, monitor: Monitor, run_id: int | None = None) -> tuple[Reference, bool]:
    """The stored reference, built and stored first if this model version has none."""
    ref = load_reference(wh, monitor)
    if ref is not None:
        return ref, False
    ref = build_reference(monitor)
    store_reference(wh, monitor, ref, run_id)
    return ref, True
