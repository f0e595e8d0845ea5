"""The closed loop without Dagster: a served champion, its traffic, and retraining.

- ``ensure_champion`` trains version v1 on the monitor's reference when the registry
  has no champion yet.
- ``serve_day`` runs the champion over one day's rows, logs every request to
  ``inference_log`` (measured latency, input hash, features) and the ground truth to
  ``labels`` a configurable delay later.
- ``retrain`` trains a challenger on the reference plus recent labeled traffic,
  compares it with the champion on the same held-out latest days, stores the
  comparison and promotes the challenger only when it is better by the margin and
  the paired permutation test says the gain is not luck. Days whose window failed
  its data-quality gate are left out of both.

Each trained version stores its reference profile (its training data and its outputs
on it), so the windows after a promotion are judged against what the new champion
learned from, and a calibration sample of its outputs on its holdout (never on its
training rows) for label-free performance estimates.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring_pipeline.core import compare_models, compute_dataset_profile
from monitoring_pipeline.demo import flights
from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.models import (TrainedModel, data_hash, evaluate, load_checkpoint, read_card, save_checkpoint,
                                        train)
from monitoring_pipeline.storage import Warehouse, registry
from monitoring_pipeline.storage.baselines import store_training_reference
from monitoring_pipeline.storage.references import StoredReference
from monitoring_pipeline.storage.results import replace_comparison
from monitoring_pipeline.storage.runs import failed_gate_windows
from monitoring_pipeline.storage.traffic import append_inference, append_labels, read_log_window

from .estimation_inputs import model_sample
from .model_views import has_views, model_profiles
from .monitors import Monitor
from .paths import child
from .references import Reference, day_span, profile_inputs, set_baseline, store_reference, typed_features
from .settings import models_dir
from .sources import feature_names, labels_of, model_inputs_of, outputs_of, reference_frame

SERVE_BATCH = 16  # requests answered together, as a batching model server does


def _spec(monitor: Monitor):
    if monitor.model is None:
        raise ValueError(f"monitor {monitor.name!r} declares no served model (field 'model')")
    return monitor.model


def model_inputs(monitor: Monitor, frame: pd.DataFrame, features: list[str]):
    """What the model takes: typed feature columns, a list of texts or an [N, C, H, W] array."""
    if monitor.modality == "tabular":
        return typed_features(monitor, frame, features)
    return model_inputs_of(monitor, frame, features)


def _next_version(wh: Warehouse, model_name: str) -> str:
    return f"v{len(registry.versions(wh, model_name)) + 1}"


def train_version(wh: Warehouse, monitor: Monitor, frame: pd.DataFrame, holdout: pd.DataFrame, *, stage: str,
                  reason: str, window: str, root: Path | None = None) -> tuple[str, TrainedModel]:
    """Train on ``frame``, evaluate on ``holdout``, checkpoint, register and store the
    version's reference: the profiles of ``frame``, the metrics and calibration sample of
    ``holdout``."""
    spec = _spec(monitor)
    features = feature_names(monitor, reference_frame(monitor))
    X, y = model_inputs(monitor, frame, features), labels_of(frame["label"])
    model = train(spec.kind, X, y, seed=spec.seed, **spec.params)
    metrics = {k: v for k, v in evaluate(model, model_inputs(monitor, holdout, features),
                                         labels_of(holdout["label"])).items()
               if isinstance(v, (int, float)) and v is not None}
    version = _next_version(wh, monitor.name)
    directory = child(root or models_dir(), monitor.name, version)
    card = {"model_name": monitor.name, "version": version, "metrics": metrics, "training_window": window,
            "training_rows": len(frame), "data_hash": data_hash(X, y), "holdout_rows": len(holdout)}
    save_checkpoint(model, directory, card)
    registry.register_model(wh, monitor.name, version, stage, framework=card.get("framework", spec.kind),
                            path=str(directory), metrics=metrics, reason=reason,
                            weights_sha256=read_card(directory)["weights_sha256"])
    ref = Reference(*_version_profiles(monitor, model, frame, features), metrics, version,
                    model_sample(monitor, model, holdout, features, source="holdout"))
    store_reference(wh, replace(monitor, champion=version), ref, None)
    # kept apart: a promotion may replace the version's reference, and its training data is not always readable again
    store_training_reference(wh, monitor.name, version, StoredReference(ref.inputs, ref.outputs, ref.metrics,
                                                                        ref.calibration))
    return version, model


def _version_profiles(monitor: Monitor, model: TrainedModel, frame: pd.DataFrame, features: list[str]):
    """A version's reference profiles of ``frame``: its inputs and the version's outputs on them
    (through the model's own views for a served torch net on images)."""
    if has_views(monitor):
        return model_profiles(monitor, model, frame, features)
    proba = model.predict_proba(model_inputs(monitor, frame, features))
    outputs = compute_dataset_profile(outputs_of(model.classes_[proba.argmax(axis=1)], proba.max(axis=1)),
                                      "outputs")
    return profile_inputs(monitor, frame, features), outputs


def ensure_champion(wh: Warehouse, monitor: Monitor, root: Path | None = None) -> str:
    """The champion's version; v1 is trained on the reference when there is none."""
    current = registry.champion(wh, monitor.name)
    if current is not None:
        return current["model_version"]
    frame = reference_frame(monitor)
    order = np.random.default_rng(_spec(monitor).seed).permutation(len(frame))
    cut = int(len(frame) * 0.8)
    train_rows, holdout = frame.iloc[np.sort(order[:cut])], frame.iloc[np.sort(order[cut:])]
    version, _ = train_version(wh, monitor, train_rows, holdout, stage="champion", root=root,
                               reason="first champion, trained on the reference", window="reference")
    return version


def load_champion(wh: Warehouse, monitor: Monitor) -> tuple[str, TrainedModel]:
    """The champion's version and model; CheckpointError when its files do not load."""
    row = registry.champion(wh, monitor.name)
    if row is None:
        raise ValueError(f"monitor {monitor.name!r} has no champion in the registry")
    model, _ = load_checkpoint(Path(row["path"]), registered=registry.recorded_checkpoints(wh),
                               models_root=models_dir())
    return row["model_version"], model


def _input_hash(features: dict) -> str:
    return hashlib.sha1(json.dumps(features, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _records(monitor: Monitor, rows: pd.DataFrame, features: list[str]) -> list[dict]:
    """What each request sent, as logged: the features, the text or the image (as lists)."""
    if monitor.modality == "tabular":
        return [{c: (None if pd.isna(v) else v) for c, v in r.items()}
                for r in rows[features].to_dict(orient="records")]
    column = monitor.input_column
    if monitor.modality == "vision":
        return [{column: np.round(np.asarray(x, dtype=np.float64), 6).tolist()} for x in rows[column]]
    return [{column: str(x)} for x in rows[column]]


def input_hashes(monitor: Monitor, rows: pd.DataFrame, features: list[str]) -> list[str]:
    """The ``input_hash`` of each row, as ``serve_day`` logs it."""
    return [_input_hash(r) for r in _records(monitor, rows, features)]


def serve_day(wh: Warehouse, monitor: Monitor, rows: pd.DataFrame, ts: pd.Series, *, label_delay: timedelta,
              prefix: str) -> dict:
    """Serve ``rows`` (features and ``label``) at times ``ts`` with the champion; log the
    requests and, ``label_delay`` after each, its label."""
    if rows.empty:
        return {"requests": 0, "version": None, "accuracy": None}
    version, model = load_champion(wh, monitor)
    features = feature_names(monitor, reference_frame(monitor))
    inputs = model_inputs(monitor, rows, features)
    predictions, confidences, latency = [], [], []
    for start in range(0, len(rows), SERVE_BATCH):
        batch = slice(start, start + SERVE_BATCH)
        began = time.perf_counter()
        proba = model.predict_proba(inputs.iloc[batch] if isinstance(inputs, pd.DataFrame) else inputs[batch])
        took = (time.perf_counter() - began) * 1000.0
        predictions.extend(model.classes_[proba.argmax(axis=1)].tolist())
        confidences.extend(proba.max(axis=1).tolist())
        latency.extend([took] * len(proba))  # each request waits for its batch
    records = _records(monitor, rows, features)
    request_ids = [f"{prefix}-{i:05d}" for i in range(len(rows))]
    log = pd.DataFrame({"ts": pd.to_datetime(ts).to_numpy(), "model_name": monitor.name, "model_version": version,
                        "request_id": request_ids, "input_hash": [_input_hash(r) for r in records],
                        "features": records, "prediction": [str(p) for p in predictions],
                        "confidence": confidences, "latency_ms": latency, "error": None})
    append_inference(wh, log)
    truth = labels_of(rows["label"])
    append_labels(wh, pd.DataFrame({"request_id": request_ids, "label": truth,
                                    "labeled_at": pd.to_datetime(ts).to_numpy() + np.timedelta64(label_delay)}))
    accuracy = float(np.mean(np.asarray([str(p) for p in predictions], dtype=object) == truth))
    return {"requests": len(rows), "version": version, "accuracy": accuracy}


def labeled_traffic(wh: Warehouse, monitor: Monitor, start: datetime, end: datetime, known_at: datetime) -> pd.DataFrame:
    """Served requests in [start, end) whose label was known at ``known_at``, with a ``day``."""
    frame = read_log_window(wh, monitor.name, start, end, labeled_before=known_at)
    frame = frame[frame["label"].notna()].reset_index(drop=True)
    frame["day"] = pd.to_datetime(frame["ts"]).dt.date
    return frame


def retrain(wh: Warehouse, monitor: Monitor, now: datetime, *, reason: str, root: Path | None = None) -> dict:
    """Train a challenger on the reference plus the labeled traffic of the last
    ``recent_days`` days before ``now``; promote it when it beats the champion on the
    latest ``holdout_days`` days by ``promotion_margin`` of accuracy, else archive it."""
    spec = _spec(monitor)
    champion_version, champion = load_champion(wh, monitor)
    recent = labeled_traffic(wh, monitor, now - timedelta(days=spec.recent_days), now, now)
    # A window that failed its data-quality gate is neither trained on nor a judge of a promotion.
    failed = {key.split("|")[0] for key in failed_gate_windows(wh, monitor.name, "data_quality_passed")}
    excluded = sorted(d.isoformat() for d in set(recent["day"]) if d.isoformat() in failed)
    recent = recent[~recent["day"].map(lambda d: d.isoformat() in failed)]
    days = sorted(recent["day"].unique())
    if len(days) <= spec.holdout_days:
        raise ValueError(f"monitor {monitor.name!r}: {len(days)} labeled days before {now:%Y-%m-%d}; retraining "
                         f"needs more than holdout_days={spec.holdout_days}")
    cut = days[-spec.holdout_days]
    fresh, holdout = recent[recent["day"] < cut], recent[recent["day"] >= cut]
    reference = reference_frame(monitor)
    features = feature_names(monitor, reference)
    # A request seen again in the holdout (traffic that repeats) must not be trained on.
    fresh = fresh[~pd.Series(input_hashes(monitor, fresh, features), index=fresh.index)
                  .isin(set(input_hashes(monitor, holdout, features)))]
    frame = pd.concat([reference, fresh[reference.columns.intersection(fresh.columns)]], ignore_index=True)
    window = f"reference + traffic {days[0]}..{days[-spec.holdout_days - 1]}"
    version, challenger = train_version(wh, monitor, frame, holdout, stage="challenger", root=root,
                                        reason=reason, window=window)
    X, y = model_inputs(monitor, holdout, features), labels_of(holdout["label"])

    def predictions(model: TrainedModel) -> dict:
        proba = model.predict_proba(X)
        out = {"y_true": y, "y_pred": model.classes_[proba.argmax(axis=1)].astype(object)}
        if model.classes_.size == 2:
            out["y_score"] = proba[:, 1]
        return out

    comparison = compare_models(predictions(champion), predictions(challenger),
                                regression_tolerance=monitor.thresholds.regression_tolerance,
                                improvement_margin=spec.promotion_margin)
    accuracy = comparison["metrics"]["accuracy"]
    gain, p = accuracy["delta"], accuracy["p_value"]
    # Better by the margin, and not by luck: the paired permutation test must agree.
    promoted = gain >= spec.promotion_margin and bool(accuracy["significant"]) and comparison["status"] != "regressed"
    on = f"on the {len(holdout)} held-out requests of {cut} onwards"
    if promoted:
        verdict = f"promoted: accuracy {gain:+.3f} {on} (p={p:.3g})"
    elif gain < spec.promotion_margin:
        verdict = f"archived: accuracy {gain:+.3f} {on}, below the margin {spec.promotion_margin:g}"
    elif comparison["status"] == "regressed":
        verdict = f"archived: regressed on {', '.join(comparison['regressed'])} {on}"
    else:
        verdict = f"archived: accuracy {gain:+.3f} {on} is within noise (p={p:.3g})"
    replace_comparison(wh, comparison, model_name=monitor.name,
                       baseline_version=champion_version, candidate_version=version, asset_key="retrain_model_job",
                       partition_key=f"{monitor.name}|{version}", run_id=None)
    if promoted:
        registry.promote(wh, monitor.name, version, reason=f"{reason}; {verdict}")
        adopt_reference(wh, monitor, version, challenger, holdout, features,
                        window=f"{cut} to {days[-1]}" if cut != days[-1] else str(cut))
    else:
        registry.archive(wh, monitor.name, version, reason=f"{reason}; {verdict}")
    return {"champion": champion_version, "challenger": version, "promoted": promoted, "verdict": verdict,
            "champion_accuracy": comparison["metrics"]["accuracy"]["baseline"],
            "challenger_accuracy": comparison["metrics"]["accuracy"]["candidate"],
            "training_rows": len(frame), "holdout_rows": len(holdout), "excluded_days": excluded}


def adopt_reference(wh: Warehouse, monitor: Monitor, version: str, model: TrainedModel, holdout: pd.DataFrame,
                    features: list[str], *, window: str) -> str:
    """After a promotion, set what the new champion is judged against (the monitor's
    ``reference_on_promotion``); returns the basis. ``validation``: the labeled days that
    proved it better (the regime it now serves), with its outputs on them; ``training``:
    its training data, stored when it was trained; ``first_window``: the first window it
    serves, stored by that window."""
    basis = monitor.reference_on_promotion
    if basis == "validation":
        X = model_inputs(monitor, holdout, features)
        metrics = {k: v for k, v in evaluate(model, X, labels_of(holdout["label"])).items()
                   if isinstance(v, (int, float)) and v is not None}
        ref = Reference(*_version_profiles(monitor, model, holdout, features), metrics, version,
                        model_sample(monitor, model, holdout, features, source="validation"))
        store_reference(wh, replace(monitor, champion=version), ref, None)
        reason = f"the {len(holdout)} labeled requests of {window} it was validated on"
        span = day_span(holdout["ts"])
    elif basis == "first_window":
        window, reason, span = None, "pending: the first window it serves", {}
    else:
        window, reason, span = None, "its training data", {}
    set_baseline(wh, monitor.name, version, basis, window=window, reason=reason, **span)
    return basis


TRAFFIC_SEED = 20260101


def traffic_day(monitor: Monitor, index: int) -> tuple[pd.DataFrame, pd.Series]:
    """The rows of the ``index``-th traffic day of a bundled data set, and each row's time
    of day. Flights keep their real days and departure times; other data sets serve
    ``rows_per_day`` consecutive rows of a fixed shuffle of their current split, spread over
    the day. The split keeps the data set's own order, in which scikit-learn's digits are
    grouped by writer: served in that order, each day came from a few writers, a real
    shift against the reference that the image embedding tests rightly flagged."""
    dataset = monitor.reference.dataset
    if monitor.reference.source != "bundled" or dataset is None:
        raise ValueError(f"monitor {monitor.name!r}: simulated traffic needs a bundled reference data set")
    if dataset == "flights":
        days = flights.traffic_days()
        if not 0 <= index < len(days):
            raise ValueError(f"flights hold {len(days)} traffic days; day {index} is out of range")
        rows = flights.day_rows(days[index])
        return rows, rows["ts"] - pd.Timestamp(days[index])
    current = bundled(dataset).current
    n = monitor.traffic.rows_per_day
    order = np.random.default_rng(TRAFFIC_SEED).permutation(len(current))
    rows = current.iloc[order[(np.arange(n) + index * n) % len(current)]].reset_index(drop=True)
    return rows, pd.Series(pd.to_timedelta(np.linspace(0, 86_399, n), unit="s"))
