"""Save and load a trained model as a weights file plus a JSON model card.

A checkpoint directory (typically ``data/models/<model_name>/<version>/``) holds
``model_card.json`` and the weights it names: ``model.pt`` for torch, loaded with
``weights_only=True``, or ``model.pkl`` for scikit-learn. The card records the
weights' sha256, so a truncated or swapped file is refused instead of half-loaded.
Both files are written to a temporary name and renamed, and the card goes last: a
crash leaves either the old checkpoint or the new one, never a torn file.

The sha256 guards against corruption, not against an attacker who can rewrite both
files: load pickled scikit-learn checkpoints only from directories you trust.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import sklearn
import torch

from . import nets
from .training import TORCH_KINDS, TrainedModel

CARD_FILE = "model_card.json"
FORMAT_VERSION = 1
NET_CLASSES = {"text_classifier": nets.TextClassifier, "image_cnn": nets.ImageCNN,
               "tabular_mlp": nets.TabularMLP}
# What deserializing a damaged or incompatible file raises (torch.load wraps its own
# failures in RuntimeError or UnpicklingError; unpickling a renamed class raises
# AttributeError or ImportError).
_LOAD_ERRORS = (OSError, json.JSONDecodeError, pickle.UnpicklingError, RuntimeError, EOFError,
                KeyError, ValueError, TypeError, AttributeError, ImportError)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded; the message names the path and the cause."""

    def __init__(self, path: Path, cause: str):
        super().__init__(f"model not loaded: {path}: {cause}")
        self.path = path


def save_checkpoint(model: TrainedModel, directory: Path, card: dict) -> Path:
    """Write the model's weights and its card into ``directory``; return the card's path.

    ``card`` is the caller's part (model name, version, metrics, training window, data
    hash, ...). The keys this function fills in (kind, framework, framework_version,
    classes, params, created_at, weights_file, weights_sha256) describe the file
    being written and replace any the caller passed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if model.kind in TORCH_KINDS:
        framework, version, weights_file = "torch", torch.__version__, "model.pt"
        buffer = io.BytesIO()
        torch.save({"format": FORMAT_VERSION, "state_dict": model.estimator.state_dict(),
                    "config": model.estimator.config, "preprocessing": model.preprocessing}, buffer)
        payload = buffer.getvalue()
    else:
        framework, version, weights_file = "sklearn", sklearn.__version__, "model.pkl"
        payload = pickle.dumps(model.estimator, protocol=pickle.HIGHEST_PROTOCOL)
    full = {**card, "kind": model.kind, "framework": framework, "framework_version": version,
            "classes": model.classes_.tolist(), "params": model.params,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "weights_file": weights_file, "weights_sha256": hashlib.sha256(payload).hexdigest()}
    try:
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False, default=_plain)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the model card is not JSON-serializable: {err}") from err
    _write_atomic(directory / weights_file, payload)
    _write_atomic(directory / CARD_FILE, text.encode("utf-8"))
    return directory / CARD_FILE


def read_card(directory: Path) -> dict:
    """The model card of a checkpoint directory, or CheckpointError."""
    path = Path(directory) / CARD_FILE
    if not Path(directory).is_dir():
        raise CheckpointError(Path(directory), "no such directory")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(path, f"unreadable model card ({err})") from err
    if not isinstance(card, dict):
        raise CheckpointError(path, f"the model card is a JSON {type(card).__name__}, not an object")
    missing = {"kind", "classes", "params", "weights_file", "weights_sha256"} - set(card)
    if missing:
        raise CheckpointError(path, f"the model card lacks {sorted(missing)}")
    return card


def load_checkpoint(directory: Path) -> tuple[TrainedModel, dict]:
    """The model and its card, after checking the weights against the card's sha256."""
    card = read_card(directory)
    name = card["weights_file"]
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise CheckpointError(Path(directory), f"weights_file {name!r} is not a file name in the directory")
    path = Path(directory) / name
    try:
        payload = path.read_bytes()
    except OSError as err:
        raise CheckpointError(path, f"unreadable weights ({err})") from err
    if hashlib.sha256(payload).hexdigest() != card["weights_sha256"]:
        raise CheckpointError(path, "sha256 differs from the model card (corrupt, truncated or replaced)")
    try:
        model = _restore(card, payload)
    except _LOAD_ERRORS as err:
        raise CheckpointError(path, f"cannot deserialize the weights ({type(err).__name__}: {err})") from err
    return model, card


def _restore(card: dict, payload: bytes) -> TrainedModel:
    kind, classes, params = card["kind"], np.asarray(card["classes"]), card["params"]
    if kind in TORCH_KINDS:
        saved = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        if saved["format"] != FORMAT_VERSION:
            raise ValueError(f"checkpoint format {saved['format']} is not {FORMAT_VERSION}")
        net = NET_CLASSES[kind](**saved["config"])
        net.load_state_dict(saved["state_dict"])
        net.eval()
        return TrainedModel(kind, classes, params, net, saved["preprocessing"])
    if kind not in ("random_forest", "logistic_regression"):
        raise ValueError(f"unknown model kind {kind!r}")
    return TrainedModel(kind, classes, params, pickle.loads(payload))


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value):
    """JSON for numpy scalars and arrays that slip into a card (np.int64 counts, say)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")
