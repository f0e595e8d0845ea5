"""Train, apply and evaluate the classifiers a monitored model can be.

``train(kind, X, y, seed=...)`` is reproducible: the same seed and the same data give
bitwise-equal probabilities. Torch kinds run on the CPU with one intra-op thread (a
multi-threaded reduction may add in a different order from run to run), draw their
initial weights and batch order from ``seed`` alone, and leave the caller's global
torch random state and thread count as they found them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from monitoring_pipeline.core import evaluate_predictions

from . import nets

KINDS = ("text_classifier", "image_cnn", "tabular_mlp", "random_forest", "logistic_regression")
TORCH_KINDS = ("text_classifier", "image_cnn", "tabular_mlp")
PREDICT_BATCH = 4096

# Every parameter a kind accepts, with its default; anything else is a typo and refused.
DEFAULTS: dict[str, dict[str, Any]] = {
    "text_classifier": {"epochs": 5, "lr": 0.01, "batch_size": 64, "weight_decay": 0.0,
                        "n_buckets": nets.N_BUCKETS, "embedding_dim": 64},
    "image_cnn": {"epochs": 20, "lr": 0.01, "batch_size": 32, "weight_decay": 0.0, "channels": [16, 32]},
    "tabular_mlp": {"epochs": 10, "lr": 0.001, "batch_size": 256, "weight_decay": 0.0, "hidden": [64, 32]},
    "random_forest": {"n_estimators": 100, "min_samples_leaf": 5, "max_depth": None},
    "logistic_regression": {"C": 1.0, "max_iter": 2000},
}


@dataclass
class TrainedModel:
    """A fitted classifier with its class labels, parameters and input encoding.

    ``estimator`` is the torch module (kept in eval mode) or the scikit-learn
    pipeline; ``preprocessing`` is the plain-Python state a torch kind's encoder
    learned from the training data (empty for scikit-learn, whose pipeline holds it).
    """

    kind: str
    classes_: np.ndarray
    params: dict
    estimator: Any
    preprocessing: dict = field(default_factory=dict)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, [n, n_classes] in the order of ``classes_``."""
        _check_input(self.kind, X)
        if len(X) == 0:
            return np.empty((0, self.classes_.size))
        if self.kind not in TORCH_KINDS:
            return self.estimator.predict_proba(X)
        inputs = _encode(self.kind, self.estimator, self.preprocessing, X)
        self.estimator.eval()
        chunks = []
        with _single_thread(), torch.no_grad():
            for start in range(0, len(X), PREDICT_BATCH):
                idx = np.arange(start, min(start + PREDICT_BATCH, len(X)))
                logits = self.estimator(*_select(self.kind, inputs, idx))
                # float64 softmax: rows sum to 1 to the last bit, as scikit-learn checks.
                chunks.append(torch.softmax(logits.double(), dim=1).numpy())
        return np.concatenate(chunks)

    def predict(self, X) -> np.ndarray:
        """The most probable class label of each row (the first one on a tie)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def train(kind: str, X, y, *, seed: int = 0, **params) -> TrainedModel:
    """Fit a classifier of ``kind`` (one of ``KINDS``) to inputs ``X`` and labels ``y``.

    X is a list of strings for ``text_classifier``, a float array [N, C, H, W] for
    ``image_cnn`` and a data frame of numeric and string columns for the tabular
    kinds. ``params`` override the kind's entries in ``DEFAULTS``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    unknown = set(params) - set(DEFAULTS[kind])
    if unknown:
        raise ValueError(f"{kind} takes no parameter {sorted(unknown)}; it takes {sorted(DEFAULTS[kind])}")
    _check_input(kind, X)
    y = _check_labels(X, y)
    try:
        classes, codes = np.unique(y, return_inverse=True)
    except TypeError as err:
        raise ValueError(f"the labels cannot be sorted; use labels of one type ({err})") from err
    if classes.size < 2:
        raise ValueError(f"y holds a single class ({classes[0]!r}); a classifier needs at least two")
    # Sequences are copied as lists: the params read back from a JSON card compare
    # equal, and editing a model's params cannot edit DEFAULTS.
    full = {**DEFAULTS[kind], **params, "seed": seed}
    full = {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in full.items()}
    if kind in TORCH_KINDS:
        net, preprocessing = _fit_torch(kind, X, codes, classes.size, full)
        return TrainedModel(kind, classes, full, net, preprocessing)
    pipeline = _sklearn_pipeline(kind, X, full).fit(X, codes)
    return TrainedModel(kind, classes, full, pipeline)


def evaluate(model: TrainedModel, X, y) -> dict:
    """``core.evaluate_predictions`` of the model on (X, y), plus ``n``, the row count."""
    y = _check_labels(X, y)
    proba = model.predict_proba(X)
    pred = model.classes_[proba.argmax(axis=1)]
    # core takes the positive-class column for a binary task; classes_ is sorted, so
    # classes_[1] is the label core treats as positive.
    score = proba[:, 1] if model.classes_.size == 2 else proba
    out = evaluate_predictions(y, pred, y_score=score, labels=model.classes_)
    out["n"] = len(y)
    return out


def data_hash(X, y) -> str:
    """sha256 hex digest of the inputs and labels, for a model card's provenance."""
    h = hashlib.sha256()
    if isinstance(X, pd.DataFrame):
        h.update(b"frame")
        h.update(repr([str(c) for c in X.columns]).encode())
        h.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    elif isinstance(X, np.ndarray) and X.dtype.kind not in "OUS":
        h.update(f"array {X.shape} {X.dtype.str}".encode())
        h.update(np.ascontiguousarray(X).tobytes())
    else:
        h.update(b"texts")
        for text in X:
            b = str(text).encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))  # a length prefix: no separator can be forged
            h.update(b)
    h.update(b"labels")
    h.update(pd.util.hash_pandas_object(pd.Series(np.asarray(y)), index=False).to_numpy().tobytes())
    return h.hexdigest()


def _check_input(kind: str, X) -> None:
    """Refuse an input of the wrong type for the kind, with the type it takes."""
    if kind == "text_classifier":
        if isinstance(X, (str, bytes)) or not isinstance(X, (list, tuple, pd.Series, np.ndarray)):
            raise ValueError(f"text_classifier takes a list of strings, got {type(X).__name__}")
        bad = [t for t in X if not isinstance(t, str)][:1]
        if bad:
            raise ValueError(f"text_classifier takes a list of strings; found {type(bad[0]).__name__} {bad[0]!r}")
    elif kind == "image_cnn":
        if not isinstance(X, np.ndarray) or X.ndim != 4 or X.dtype.kind not in "fiub":
            shape = getattr(X, "shape", None)
            raise ValueError(f"image_cnn takes a numeric array [N, C, H, W], got {type(X).__name__} {shape}")
    elif not isinstance(X, pd.DataFrame):
        raise ValueError(f"{kind} takes a pandas DataFrame, got {type(X).__name__}")
    elif X.shape[1] == 0:
        raise ValueError(f"{kind} needs at least one column")


def _check_labels(X, y) -> np.ndarray:
    y = np.asarray(y)
    if len(X) == 0:
        raise ValueError("X is empty; there is nothing to train or evaluate on")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has shape {y.shape}; they must match")
    if pd.isna(y).any():
        raise ValueError("y has missing labels; drop those rows first")
    return y


@contextmanager
def _single_thread() -> Iterator[None]:
    """One intra-op thread for the block (process-wide: do not train from several threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _encode(kind: str, net, preprocessing: dict, X):
    """The raw input as what the net's forward takes, indexable by row."""
    if kind == "text_classifier":
        return nets.encode_texts(list(X), net.config["n_buckets"])
    if kind == "image_cnn":
        if X.shape[1] != net.config["in_channels"]:
            raise ValueError(f"the model takes {net.config['in_channels']} channel(s), got {X.shape[1]}")
        return nets.scale_images(X.astype(np.float64), preprocessing)
    return nets.encode_tabular(X, preprocessing)


def _select(kind: str, inputs, idx: np.ndarray) -> tuple:
    if kind == "text_classifier":
        return nets.bag([inputs[i] for i in idx])
    return (inputs[torch.from_numpy(idx)],)


def _build_net(kind: str, X, n_classes: int, params: dict) -> tuple[torch.nn.Module, dict]:
    """A freshly initialized net and the encoder state learned from X."""
    if kind == "text_classifier":
        return nets.TextClassifier(n_classes, params["n_buckets"], params["embedding_dim"]), {}
    if kind == "image_cnn":
        return nets.ImageCNN(n_classes, X.shape[1], params["channels"]), nets.fit_image_scaling(X)
    encoding = nets.fit_tabular_encoding(X)
    return nets.TabularMLP(nets.tabular_width(encoding), n_classes, params["hidden"]), encoding


def _fit_torch(kind: str, X, codes: np.ndarray, n_classes: int, params: dict):
    """Adam on cross-entropy; batch order from a RandomState seeded like the weights."""
    seed = params["seed"]
    with torch.random.fork_rng(devices=[]), _single_thread():
        torch.manual_seed(seed)
        net, preprocessing = _build_net(kind, X, n_classes, params)
        inputs = _encode(kind, net, preprocessing, X)
        target = torch.from_numpy(codes.astype(np.int64))
        # fused: one kernel per step instead of a dozen passes over the 4M-entry
        # embedding table, about 7x faster on the CPU and as deterministic.
        optimizer = torch.optim.Adam(net.parameters(), lr=params["lr"], weight_decay=params["weight_decay"],
                                     fused=True)
        loss_fn = torch.nn.CrossEntropyLoss()
        order_rng = np.random.RandomState(seed)
        batch = params["batch_size"]
        net.train()
        for _ in range(params["epochs"]):
            order = order_rng.permutation(len(codes))
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                loss = loss_fn(net(*_select(kind, inputs, idx)), target[torch.from_numpy(idx)])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        net.eval()
    return net, preprocessing


def _sklearn_pipeline(kind: str, X: pd.DataFrame, params: dict) -> Pipeline:
    """Median-imputed numerics (scaled for the linear model) and one-hot categoricals."""
    numeric, categorical = nets.split_columns(X)
    numeric_steps = [SimpleImputer(strategy="median")]
    if kind == "logistic_regression":
        numeric_steps.append(StandardScaler())
        model = LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=params["seed"])
    else:
        model = RandomForestClassifier(
            n_estimators=params["n_estimators"], min_samples_leaf=params["min_samples_leaf"],
            max_depth=params["max_depth"], n_jobs=1, random_state=params["seed"])
    columns = ColumnTransformer([
        ("numeric", make_pipeline(*numeric_steps), numeric),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
    ])
    return make_pipeline(columns, model)
