"""Evaluation tasks of the Tier 5 gate: a bundled data set's current split as the eval set,
and the candidate to evaluate on it (a built-in model, a predictions file, or a trained
checkpoint such as the closed loop writes under data/models/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from monitoring_pipeline.demo.bundled import BundledDataset, bundled
from monitoring_pipeline.demo.models import bundled_model, model_inputs
from monitoring_pipeline.models import load_checkpoint

from .settings import models_dir
from .sources import labels_of

TASKS = {"breast_cancer": "tabular", "digits": "vision", "trump_tweets": "text"}


@dataclass(frozen=True)
class Candidate:
    version: str
    predictions: np.ndarray  # class labels as strings
    proba: np.ndarray | None  # [n, n_classes] in ``classes`` order
    classes: np.ndarray | None


def task_dataset(task_name: str, modality: str) -> BundledDataset:
    if task_name not in TASKS:
        raise ValueError(f"unknown task {task_name!r}; known: {', '.join(TASKS)}")
    if TASKS[task_name] != modality:
        raise ValueError(f"task {task_name!r} is {TASKS[task_name]}, not {modality}")
    return bundled(task_name)


def profile_data(dataset: BundledDataset, frame: pd.DataFrame):
    """The eval inputs as compute_dataset_profile takes them for the task's modality."""
    if dataset.modality == "vision":
        return np.stack(frame[dataset.input_column].to_numpy())
    if dataset.modality == "text":
        return frame[dataset.input_column].astype(str).tolist()
    return frame[dataset.features]


def _builtin(dataset: BundledDataset, spec: dict, batch_size: int) -> Candidate:
    name = spec.get("name") or "logistic_regression"
    model = bundled_model(dataset.name, name, spec.get("train_rows"))
    inputs = model_inputs(dataset, dataset.current)
    n = len(dataset.current)
    batches = [model.predict_proba(inputs[i:i + batch_size]) for i in range(0, n, batch_size)]
    proba = np.concatenate(batches)
    rows = spec.get("train_rows")
    version = spec.get("version") or (f"{name}-{rows}rows" if rows else name)
    return Candidate(version, labels_of(model.classes_[proba.argmax(axis=1)]), proba, labels_of(model.classes_))


def _from_file(dataset: BundledDataset, spec: dict) -> Candidate:
    path = spec.get("path")
    if not path or not Path(path).exists():
        raise ValueError(f"candidate predictions file {path!r} does not exist")
    reader = "read_parquet" if str(path).endswith(".parquet") else "read_csv_auto"
    conn = duckdb.connect()
    try:
        frame = conn.execute(f"SELECT * FROM {reader}(?)", [str(path)]).df()
    finally:
        conn.close()
    if "prediction" not in frame.columns:
        raise ValueError(f"{path}: needs a 'prediction' column")
    if len(frame) != len(dataset.current):
        raise ValueError(f"{path}: {len(frame)} predictions for an eval set of {len(dataset.current)}")
    proba_cols = sorted(c for c in frame.columns if c.startswith("proba_"))
    proba = frame[proba_cols].to_numpy(np.float64) if proba_cols else None
    classes = np.array([c[len("proba_"):] for c in proba_cols], dtype=object) if proba_cols else None
    return Candidate(spec.get("version") or Path(path).stem, labels_of(frame["prediction"]), proba, classes)


def _from_checkpoint(dataset: BundledDataset, spec: dict, batch_size: int, registered: dict) -> Candidate:
    """A registered checkpoint (data/models/<model>/<version>/): CheckpointError when it is
    not in the registry, lies outside the models folder and the registered directories,
    differs from the registry's hash, or does not load."""
    if not spec.get("path"):
        raise ValueError("a checkpoint candidate needs 'path', the checkpoint's directory")
    model, card = load_checkpoint(Path(spec["path"]), registered=registered, models_root=models_dir())
    inputs = profile_data(dataset, dataset.current)  # what the models take: a frame, texts or [N, C, H, W]
    n = len(dataset.current)
    proba = np.concatenate([model.predict_proba(inputs.iloc[i:i + batch_size] if isinstance(inputs, pd.DataFrame)
                                                else inputs[i:i + batch_size]) for i in range(0, n, batch_size)])
    version = spec.get("version") or f"{card.get('model_name') or card['kind']}:{card.get('version') or 'checkpoint'}"
    return Candidate(version, labels_of(model.classes_[proba.argmax(axis=1)]), proba, labels_of(model.classes_))


def candidate_predictions(dataset: BundledDataset, spec: dict, batch_size: int,
                          registered: dict | None = None) -> Candidate:
    """The candidate's predictions on the eval set: a built-in model, a predictions file
    or a trained checkpoint the model registry records (``registered``: directory -> sha256,
    as ``storage.registry.recorded_checkpoints`` reads them)."""
    if batch_size < 1:
        raise ValueError("eval.batch_size must be at least 1")
    kind = spec.get("kind", "builtin")
    if kind == "builtin":
        return _builtin(dataset, spec, batch_size)
    if kind == "predictions":
        return _from_file(dataset, spec)
    if kind == "checkpoint":
        return _from_checkpoint(dataset, spec, batch_size, registered or {})
    raise ValueError(f"candidate kind must be builtin, predictions or checkpoint, got {kind!r}")


def scores_for(candidate: Candidate, labels: np.ndarray):
    """y_score for evaluate_predictions: positive-class column (binary) or the matrix in label order."""
    if candidate.proba is None:
        return None
    index = {c: i for i, c in enumerate(candidate.classes)}
    if any(label not in index for label in labels):
        return None
    matrix = candidate.proba[:, [index[label] for label in labels]]
    return matrix[:, 1] if len(labels) == 2 else matrix
