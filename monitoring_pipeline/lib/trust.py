"""Recording the weights hash of a checkpoint registered before hashes were recorded.

Checkpoints load only when their weights match the sha256 the model registry recorded
(see ``models.checkpoints``). Versions registered by an older release have no such
record and are refused; a person who has checked the files records it here, once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.registry import record_weights_sha256


def trust_checkpoint(wh: Warehouse, model_name: str, version: str) -> str:
    """Record the sha256 of a registered version's weights; returns it. ValueError when the
    version is unknown, has no checkpoint, already records a hash, or its weights do not
    match its own model card (a damaged file is not made loadable)."""
    from monitoring_pipeline.models.checkpoints import CheckpointError, read_card  # torch: this command only

    rows = wh.read("SELECT path, weights_sha256 FROM model_registry WHERE model_name = ? AND model_version = ?",
                   [model_name, version])
    if rows.empty:
        raise ValueError(f"model {model_name!r} has no registered version {version!r}")
    path, recorded = rows.iloc[0]
    if not isinstance(path, str):
        raise ValueError(f"model {model_name!r} version {version!r} has no checkpoint directory")
    if isinstance(recorded, str):
        raise ValueError(f"model {model_name!r} version {version!r} already records sha256 {recorded[:16]}...")
    try:
        card = read_card(Path(path))
    except CheckpointError as error:
        raise ValueError(str(error)) from error
    weights = Path(path) / Path(str(card["weights_file"])).name
    try:
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    except OSError as error:
        raise ValueError(f"{weights}: unreadable weights ({error.strerror})") from error
    if digest != card["weights_sha256"]:
        raise ValueError(f"{weights}: sha256 differs from its model card (damaged or replaced); not recorded")
    record_weights_sha256(wh, model_name, version, digest)
    return digest
