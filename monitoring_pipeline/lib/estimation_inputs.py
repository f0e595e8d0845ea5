"""The two sides of a label-free performance estimate: a version's calibration sample and a window's inputs.

``core.estimation.estimate_performance`` calibrates a model's scores on a labeled
sample of its outputs on data it did not train on, and applies the calibration to a
window's outputs. Every version's reference keeps that sample (:func:`calibration_sample`,
stored with the reference); :func:`current_inputs` builds the window's side. Both carry
the same kind of score and the same inputs ``X``, so a classifier that tells reference
from current rows compares like with like:

- tabular: the typed feature columns (numbers and datetimes as floats, the rest as labels);
- vision: a served torch net's penultimate embeddings, else the pixels pooled to 8x8;
- text: hashed document embeddings, or with ``embedder: minilm`` sentence embeddings.

Scores are class probabilities where the model can be asked (a bundled model out of
fold, a served version on its holdout, a served torch net on images); from a log or a
file, a binary task's positive-class probability is rebuilt from the prediction and its
confidence, and a multiclass task has only the ``confidence``. A binary ``y_score`` is
the probability of ``classes[1]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from monitoring_pipeline.core.categorical import category_label
from monitoring_pipeline.core.columns import column_kind, float_values
from monitoring_pipeline.core.concept import image_features
from monitoring_pipeline.core.modalities import tokenize
from monitoring_pipeline.core.text_embedding import hashed_embedding
from monitoring_pipeline.models.views import model_views
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.references import load_reference_set

from .model_views import has_views, load_version
from .monitors import Monitor
from .sources import feature_names, labels_of, model_inputs_of, profile_inputs_of, reference_frame, typed_features

SAMPLE_ROWS = 5_000  # a stored sample stays small: at most this many rows, a seeded random subset
SAMPLE_SEED = 0
TASKS = ("classification", "regression")


def binary_scores(predictions, confidences, classes) -> np.ndarray:
    """The probability of ``classes[1]`` (the positive class) for each row of a binary task:
    the confidence where it was predicted, one minus it where ``classes[0]`` was; NaN where
    the confidence is missing or the prediction is neither class."""
    if len(classes) != 2:
        raise ValueError(f"a binary score needs two classes, got {list(classes)}")
    pred = labels_of(predictions)
    conf = pd.to_numeric(pd.Series(confidences), errors="coerce").to_numpy(np.float64)
    score = np.where(pred == str(classes[1]), conf, 1.0 - conf)
    return np.where((pred == str(classes[0])) | (pred == str(classes[1])), score, np.nan)


def positive_scores(labels, predictions, confidences, *, classes=None) -> np.ndarray | None:
    """Positive-class probabilities of a binary task, rebuilt from top-class confidences; the
    classes are ``classes`` or the sorted labels of ``labels`` and ``predictions`` (of
    {"0", "1"}, "1" is positive). None unless there are two and every row has a score."""
    if classes is None:
        seen = set(labels_of(predictions)) | (set(labels_of(labels)) if labels is not None else set())
        classes = sorted(seen - {None})
    if len(classes) != 2:
        return None
    score = binary_scores(predictions, confidences, classes)
    return score if np.all(np.isfinite(score)) else None


def sample_positions(usable, max_rows: int | None = SAMPLE_ROWS, seed: int = SAMPLE_SEED) -> np.ndarray:
    """The positions of the usable rows; a seeded random subset of ``max_rows`` of them, in
    their order, when there are more."""
    positions = np.flatnonzero(np.asarray(usable, dtype=bool))
    if max_rows is not None and len(positions) > max_rows:
        positions = np.sort(np.random.default_rng(seed).choice(positions, size=max_rows, replace=False))
    return positions


def _scores(values, name: str, n: int) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} rows; the predictions have {n}")
    finite = a[np.isfinite(a)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"{name} must be probabilities in [0, 1]; found values from {finite.min():g} "
                         f"to {finite.max():g}")
    return a


def _rows(y_true, y_pred, *, y_score=None, classes=None, confidence=None, X=None, task: str,
          max_rows: int | None, seed: int) -> dict | None:
    """The usable rows of a model's outputs (``y_true`` may be None: a window's side)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    regression = task == "regression"
    as_values = (lambda v: pd.to_numeric(pd.Series(v), errors="coerce").to_numpy(np.float64)) if regression \
        else labels_of
    y_pred = as_values(y_pred)
    n = len(y_pred)
    usable = np.isfinite(y_pred) if regression else y_pred != None  # noqa: E711  (elementwise)
    out = {"task": task}
    if y_true is not None:
        y_true = as_values(y_true)
        if len(y_true) != n:
            raise ValueError(f"y_true has {len(y_true)} rows; y_pred has {n}")
        usable &= np.isfinite(y_true) if regression else y_true != None  # noqa: E711
        out["y_true"] = y_true
    out["y_pred"] = y_pred
    if not regression:
        if y_score is not None:
            y_score = _scores(y_score, "y_score", n)
            if classes is None:
                raise ValueError("y_score needs classes: the labels of its columns (of a binary task, the "
                                 "negative and the positive class)")
            classes = [str(c) for c in classes]
            k = 2 if y_score.ndim == 1 else y_score.shape[1]
            if y_score.ndim > 2 or len(classes) != k:
                raise ValueError(f"y_score of shape {y_score.shape} does not fit {len(classes)} classes {classes}")
            usable &= np.isfinite(y_score) if y_score.ndim == 1 else np.isfinite(y_score).all(axis=1)
            out.update(y_score=y_score, classes=classes)
        elif confidence is not None:
            out["confidence"] = confidence = _scores(confidence, "confidence", n)
            usable &= np.isfinite(confidence)
        else:
            raise ValueError("a classification sample needs y_score (class probabilities) or confidence")
    positions = sample_positions(usable, max_rows, seed)
    if len(positions) == 0:
        return None
    for key in ("y_true", "y_pred", "y_score", "confidence"):
        if key in out:
            out[key] = out[key][positions]
    if X is not None and not callable(X) and len(X) != n:
        raise ValueError(f"X has {len(X)} rows; y_pred has {n}")
    if X is not None:
        X = X(positions) if callable(X) else (X.iloc[positions].reset_index(drop=True) if isinstance(X, pd.DataFrame)
                                               else np.asarray(X)[positions])
        if len(X) != len(positions):
            raise ValueError(f"X has {len(X)} rows for {len(positions)} kept rows")
        out["X"] = X
    out.update(n_rows=int(len(positions)), n_available=int(usable.sum()), n_dropped=int(n - usable.sum()))
    return out


def calibration_sample(y_true, y_pred, *, y_score=None, classes=None, confidence=None,
                       X: pd.DataFrame | np.ndarray | Callable | None = None, task: str = "classification",
                       source: str = "", max_rows: int = SAMPLE_ROWS, seed: int = SAMPLE_SEED) -> dict | None:
    """A labeled sample of a model's outputs, as ``estimate_performance`` takes its reference.

    ``y_score`` is [n] (the probability of ``classes[1]``) or [n, k] (columns in the order of
    ``classes``); without it, ``confidence`` is the top-class probability. ``X`` holds the
    inputs of every row, or is a function of the kept rows' positions that builds theirs
    (only the sample's rows are then embedded). Rows without a label, a prediction or a
    score are left out and counted (``n_dropped``); of the rest at most ``max_rows`` are
    kept, a random subset seeded by ``seed`` (``n_available`` says how many there were).
    ``source`` says where the rows come from. None when no row is left.
    """
    out = _rows(y_true, y_pred, y_score=y_score, classes=classes, confidence=confidence, X=X, task=task,
                max_rows=max_rows, seed=seed)
    if out is not None:
        out.update(source=source, seed=seed)
    return out


def estimation_features(monitor: Monitor, frame: pd.DataFrame, features: list[str], *,
                        embeddings: np.ndarray | None = None, kinds: dict | None = None) -> pd.DataFrame | np.ndarray:
    """The inputs ``X`` of ``frame``'s rows (see the module docstring). A tabular ``X`` is a
    DataFrame of the ``features`` (numeric float columns, categorical label columns; ``kinds``
    keeps each column's kind as the reference had it; columns no kind can summarize are left
    out); image and text ``X`` is a float array [N, D]. A served torch net on images needs
    its ``embeddings`` (:func:`models.views.model_views`)."""
    if monitor.modality == "tabular":
        typed, columns, index = typed_features(monitor, frame, features), {}, pd.RangeIndex(len(frame))
        for name in features:
            kind = (kinds or {}).get(name) or column_kind(typed[name])
            if kind in ("numeric", "datetime"):  # datetimes as seconds since the epoch
                columns[name] = pd.Series(float_values(typed[name]), index=index, dtype=np.float64)
            elif kind == "categorical":  # labels with None (object, not pandas' str dtype with NaN)
                columns[name] = pd.Series([None if pd.isna(v) else category_label(v) for v in typed[name]],
                                          index=index, dtype=object)
        return pd.DataFrame(columns, index=index)
    if monitor.modality == "vision":
        if embeddings is not None:
            return np.asarray(embeddings, dtype=np.float64)
        if has_views(monitor):
            raise ValueError(f"monitor {monitor.name!r}: its inputs are seen through its net; pass the net's "
                             "penultimate embeddings")
        return image_features(model_inputs_of(monitor, frame, features)).to_numpy()
    texts = profile_inputs_of(monitor, frame, features)
    if isinstance(texts, dict):  # embedder: minilm
        return np.asarray(texts["embeddings"], dtype=np.float64)
    return hashed_embedding([None if t is None else tokenize(t) for t in texts])


def _served_inputs(monitor: Monitor, frame: pd.DataFrame, features: list[str]):
    """What a served model takes (as ``loop.model_inputs``)."""
    return typed_features(monitor, frame, features) if monitor.modality == "tabular" else \
        model_inputs_of(monitor, frame, features)


def model_sample(monitor: Monitor, model, frame: pd.DataFrame, features: list[str], *, source: str) -> dict | None:
    """The calibration sample of a served version (a ``TrainedModel``) on the labeled rows of
    ``frame``, which must be rows it did not train on (its holdout): its class probabilities,
    and for a torch net on images its penultimate embeddings as ``X``."""
    rows = frame[frame["label"].notna()].reset_index(drop=True)
    if rows.empty:
        return None
    classes = labels_of(model.classes_)
    if has_views(monitor):
        views = model_views(model, model_inputs_of(monitor, rows, features))
        proba, X = views.probabilities, views.embeddings
    else:
        proba = model.predict_proba(_served_inputs(monitor, rows, features))
        X = lambda positions: estimation_features(monitor, rows.iloc[positions], features)  # noqa: E731
    return calibration_sample(rows["label"], classes[proba.argmax(axis=1)], classes=list(classes), X=X,
                              y_score=proba[:, 1] if len(classes) == 2 else proba, source=source)


def reference_sample(monitor: Monitor, frame: pd.DataFrame, features: list[str], produced: dict | None) -> dict | None:
    """The calibration sample of a reference built from the monitor's data, from the champion's
    outputs on it (``sources.reference_outputs``): a bundled champion's out-of-fold
    probabilities, or a file's prediction column with, for a classifier, its confidence
    column. None when there are no outputs, or a classifier's file has no confidence."""
    if produced is None:
        return None
    X = lambda positions: estimation_features(monitor, frame.iloc[positions], features)  # noqa: E731
    if "probabilities" in produced:
        proba, classes = np.asarray(produced["probabilities"]), [str(c) for c in produced["classes"]]
        return calibration_sample(produced["labels"], produced["predictions"], classes=classes, X=X,
                                  y_score=proba[:, 1] if len(classes) == 2 else proba, source="out of fold")
    labels, predictions = frame["label"], frame[monitor.prediction_column]
    if monitor.task == "regression":
        return calibration_sample(labels, predictions, X=X, task="regression", source="reference file")
    if "confidence" not in frame.columns:
        return None
    return calibration_sample(labels, predictions, X=X, source="reference file",
                              **_logged_scores(predictions, frame["confidence"], _two_classes(labels, predictions)))


def _two_classes(*columns) -> list[str] | None:
    seen = set().union(*(set(labels_of(c)) for c in columns)) - {None}
    return sorted(seen) if len(seen) == 2 else None


def _logged_scores(predictions, confidences, classes: list[str] | None) -> dict:
    """A binary task's positive-class probabilities rebuilt from logged confidences, else the confidences."""
    if classes is not None and len(classes) == 2:
        return {"y_score": binary_scores(predictions, confidences, classes), "classes": list(classes)}
    return {"confidence": pd.to_numeric(pd.Series(confidences), errors="coerce").to_numpy(np.float64)}


def _served_outputs(wh: Warehouse, monitor: Monitor, rows: pd.DataFrame, features: list[str],
                    classes: list[str] | None, kinds: dict | None) -> dict:
    """The logged outputs of served ``rows`` as sample columns: the prediction, the scores (a
    served torch net on images is asked again, by the checkpoint of the version, for its
    probabilities and embeddings) and ``X``."""
    out = {"y_pred": rows["prediction"]}
    if has_views(monitor):
        if monitor.champion is None:
            raise ValueError(f"monitor {monitor.name!r}: a served net's outputs need the version that served them")
        views = model_views(load_version(wh, monitor.name, monitor.champion), model_inputs_of(monitor, rows, features))
        view_classes = [str(c) for c in labels_of(views.classes)]
        proba = views.probabilities
        return {**out, "y_score": proba[:, 1] if len(view_classes) == 2 else proba, "classes": view_classes,
                "X": estimation_features(monitor, rows, features, embeddings=views.embeddings)}
    out["X"] = lambda positions: estimation_features(monitor, rows.iloc[positions], features, kinds=kinds)
    if monitor.task == "regression":
        return out
    return {**out, **_logged_scores(rows["prediction"], rows["confidence"], classes)}


def _own_rows(monitor: Monitor, served: pd.DataFrame) -> pd.DataFrame:
    """The rows the monitor's version answered; every row when it has none."""
    if monitor.champion is None or served.empty:
        return served.reset_index(drop=True)
    return served[served["model_version"].astype(str) == str(monitor.champion)].reset_index(drop=True)


def window_sample(wh: Warehouse, monitor: Monitor, served: pd.DataFrame, features: list[str]) -> dict | None:
    """The calibration sample of a version whose reference is a window it served: its labeled
    rows of the window, with the outputs it logged (re-read through a served net). None when
    none is labeled yet."""
    rows = _own_rows(monitor, served)
    rows = rows[rows["label"].notna()].reset_index(drop=True) if len(rows) else rows
    if rows.empty:
        return None
    classes = _two_classes(rows["label"], rows["prediction"]) if monitor.task == "classification" else None
    outputs = _served_outputs(wh, monitor, rows, features, classes, None)
    return calibration_sample(rows["label"], task=monitor.task, source="first window", **outputs)


def current_inputs(wh: Warehouse, monitor: Monitor, served: pd.DataFrame, *, reference=None) -> dict | None:
    """The window's side of a performance estimate: the rows the monitor's version answered
    (every row when it has none) with ``y_pred``, scores (``y_score`` and ``classes``, else
    ``confidence``) and ``X``, all built as the version's calibration sample was: the same
    feature columns and kinds, the same embedder, the same net. A binary task's positive
    class is the sample's; without a stored sample a window has only its confidences.

    ``reference`` is the version's stored reference (``lib.references.Reference`` or
    ``storage.references.StoredReference``), read when not given. Rows without a prediction
    or a score are left out and counted (``n_dropped``); a tabular feature the window lacks
    is missing in every row and named in ``missing_features``; a Parquet lake window's frame
    holds no features, so it has no ``X`` (its estimate weighs nothing by inputs). None when no
    row is left.
    """
    rows = _own_rows(monitor, served)
    if rows.empty:
        return None
    if reference is None:
        reference = load_reference_set(wh, monitor.name, monitor.champion)
    sample = getattr(reference, "calibration", None) or {}
    kinds, missing = None, []
    if monitor.modality != "tabular":
        features = [monitor.input_column]
    elif isinstance(sample.get("X"), pd.DataFrame):  # the sample's columns, read as it read them
        frame_X = sample["X"]
        features = [str(c) for c in frame_X.columns]
        kinds = {c: "numeric" if pd.api.types.is_numeric_dtype(frame_X[c].dtype) else "categorical" for c in features}
    elif reference is not None:
        features = list(reference.inputs.features)
    else:
        features = feature_names(monitor, reference_frame(monitor))
    lake = monitor.traffic.source == "parquet"  # a lake window's frame has no inputs (lib/lake_traffic): scores only
    if monitor.modality == "tabular" and not lake:
        missing = [f for f in features if f not in rows.columns]
        rows = rows.assign(**{f: np.nan for f in missing})
    classes = sample.get("classes") if "y_score" in sample else None
    outputs = _served_outputs(wh, monitor, rows, features, classes, kinds)
    if lake:
        del outputs["X"]
    out = _rows(None, task=monitor.task, max_rows=None, seed=SAMPLE_SEED, **outputs)
    if out is None:
        return None
    del out["n_available"]
    return {**out, "missing_features": missing} if missing else out
