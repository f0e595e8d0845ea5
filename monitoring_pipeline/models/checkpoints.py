"""Save and load a trained model as a weights file plus a JSON model card.

A checkpoint directory (typically ``data/models/<model_name>/<version>/``) holds
``model_card.json`` and the weights it names: ``model.pt`` for torch, or ``model.pkl``
for scikit-learn. Both files are written to a temporary name and renamed, and the card
goes last: a crash leaves either the old checkpoint or the new one, never a torn file.

Loading trusts the model registry, not the files. A checkpoint loads only when its
directory, resolved (symbolic links and ``..`` followed), lies under the models folder
or is a directory the registry records, when the registry records it, and when the
weights' sha256 equals the one the registry recorded at registration. The card's own
sha256 catches corruption; the registry's catches a file replaced after registration,
card and all. Torch weights are read with ``weights_only=True`` (tensors and plain
containers, never arbitrary objects). A scikit-learn pickle can run code when it is
read, so its bytes are unpickled only after they matched the registry's record: the
bytes the project itself wrote when it registered the version.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from collections.abc import Mapping
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
WEIGHTS_FILES = {**{k: "model.pt" for k in TORCH_KINDS}, "random_forest": "model.pkl",
                 "logistic_regression": "model.pkl"}
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


def load_checkpoint(directory: Path, *, registered: Mapping[str, str | None],
                    models_root: Path) -> tuple[TrainedModel, dict]:
    """The model and its card, once the checkpoint is known to the registry.

    ``registered`` maps each checkpoint directory the model registry records to the
    weights' sha256 recorded with it (``storage.registry.recorded_checkpoints``);
    ``models_root`` is the models folder. CheckpointError, before a byte of the
    weights is deserialized, when the directory resolves outside the models folder and
    every registered directory, when the registry does not record it, or when the
    weights' sha256 differs from the registry's record or from the card's.
    """
    resolved, expected = _registered_directory(Path(directory), registered, Path(models_root))
    card = read_card(resolved)
    name = card["weights_file"]
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise CheckpointError(resolved, f"weights_file {name!r} is not a file name in the directory")
    kind = card["kind"]
    if not isinstance(kind, str) or kind not in WEIGHTS_FILES:
        raise CheckpointError(resolved, f"unknown model kind {kind!r}")
    if name != WEIGHTS_FILES[kind]:  # the kind decides how the bytes are read: they must agree
        raise CheckpointError(resolved, f"a {kind} checkpoint's weights are {WEIGHTS_FILES[kind]}, not {name!r}")
    path = resolved / name
    if path.is_symlink():
        raise CheckpointError(path, "the weights file is a symbolic link; a checkpoint holds its own files")
    try:
        payload = path.read_bytes()
    except OSError as err:
        raise CheckpointError(path, f"unreadable weights ({err})") from err
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise CheckpointError(path, f"sha256 differs from the model registry's record (recorded {expected[:16]}..., "
                                    f"the file has {actual[:16]}...): changed since it was registered; not loaded")
    if actual != card["weights_sha256"]:
        raise CheckpointError(path, "sha256 differs from the model card (the card was changed or replaced)")
    try:
        model = _restore(card, payload)
    except _LOAD_ERRORS as err:
        raise CheckpointError(path, f"cannot deserialize the weights ({type(err).__name__}: {err})") from err
    return model, card


def _registered_directory(directory: Path, registered: Mapping[str, str | None],
                          models_root: Path) -> tuple[Path, str]:
    """The directory resolved, and the sha256 the registry recorded for it."""
    resolved = directory.resolve()
    root = models_root.resolve()
    records: dict[Path, str | None] = {}
    for recorded, sha in registered.items():
        records.setdefault(Path(recorded).resolve(), sha)
    if not (resolved.is_relative_to(root) or resolved in records):
        shown = ", ".join(str(p) for p in sorted(records)[:5]) + (" ..." if len(records) > 5 else "")
        raise CheckpointError(directory, f"resolves to {resolved}, outside the folders checkpoints load from: "
                                         f"the models folder {root} ($MONITORING_MODELS) and the directories "
                                         f"the model registry records ({shown or 'none'})")
    if resolved not in records:
        raise CheckpointError(directory, f"{resolved} is not in the model registry; a checkpoint loads only when "
                                         "the registry records its directory and sha256: save it under the models "
                                         f"folder {root} and register it (storage.registry.register_model with "
                                         "weights_sha256)")
    if not records[resolved]:
        raise CheckpointError(directory, "the model registry records no sha256 for it (registered before hashes "
                                         "were recorded); check the file, then record its hash with "
                                         "`monitoring-pipeline models trust <model> <version>`")
    return resolved, records[resolved]


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
