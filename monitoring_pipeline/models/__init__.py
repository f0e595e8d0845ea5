"""Classifiers to monitor: small torch nets and scikit-learn tabular models.

Training is seeded and CPU-only; checkpoints carry a JSON model card and a sha256 of
their weights. Nothing here imports dagster or duckdb.
"""

from .checkpoints import CheckpointError, load_checkpoint, read_card, save_checkpoint
from .nets import ImageCNN, TabularMLP, TextClassifier
from .training import DEFAULTS, KINDS, TrainedModel, data_hash, evaluate, train

__all__ = [
    "CheckpointError",
    "DEFAULTS",
    "ImageCNN",
    "KINDS",
    "TabularMLP",
    "TextClassifier",
    "TrainedModel",
    "data_hash",
    "evaluate",
    "load_checkpoint",
    "read_card",
    "save_checkpoint",
    "train",
]
