"""Three small torch classifiers and the input encoding each one needs.

The nets take tensors; the encoders turn raw inputs (texts, image arrays, data
frames) into those tensors. Every piece of state an encoder learns from the training
data is kept as plain Python numbers and strings, so a checkpoint can be read back
with ``torch.load(weights_only=True)`` and never has to unpickle arbitrary objects.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

TOKEN = re.compile(r"[a-z0-9@#']+")
N_BUCKETS = 2**16


def tokenize(text: str) -> list[str]:
    """Lower-cased words, hashtags and @handles: ``"Hi @Bob!" -> ["hi", "@bob"]``."""
    return TOKEN.findall(text.lower())


def hash_tokens(tokens: Sequence[str], n_buckets: int = N_BUCKETS) -> list[int]:
    """Bucket ids of the tokens.

    crc32 rather than ``hash()``: Python salts string hashes per process, so a model
    trained in one process would see different buckets in the next.
    """
    return [zlib.crc32(t.encode("utf-8")) % n_buckets for t in tokens]


def encode_texts(texts: Sequence[str], n_buckets: int = N_BUCKETS) -> list[torch.Tensor]:
    """One int64 tensor of bucket ids per text (empty for a text with no words)."""
    return [torch.tensor(hash_tokens(tokenize(t), n_buckets), dtype=torch.int64) for t in texts]


def bag(encoded: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat ids and start offsets, the input ``nn.EmbeddingBag`` takes for a batch."""
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.int64)
    offsets = torch.zeros(len(encoded), dtype=torch.int64)
    offsets[1:] = torch.cumsum(lengths, 0)[:-1]
    return torch.cat(list(encoded)), offsets


class TextClassifier(nn.Module):
    """Mean of hashed word embeddings, then a linear layer (fastText without n-grams)."""

    def __init__(self, n_classes: int, n_buckets: int = N_BUCKETS, embedding_dim: int = 64):
        super().__init__()
        self.config = {"n_classes": n_classes, "n_buckets": n_buckets, "embedding_dim": embedding_dim}
        self.embedding = nn.EmbeddingBag(n_buckets, embedding_dim, mode="mean")
        self.out = nn.Linear(embedding_dim, n_classes)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.out(self.embedding(ids, offsets))


class ImageCNN(nn.Module):
    """Two 3x3 conv layers, adaptive average pooling to 4x4, one linear layer.

    Sized for small images such as the 8x8 digits; the pooling makes it accept any
    height and width.
    """

    def __init__(self, n_classes: int, in_channels: int = 1, channels: Sequence[int] = (16, 32)):
        super().__init__()
        c1, c2 = channels
        self.config = {"n_classes": n_classes, "in_channels": in_channels, "channels": list(channels)}
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.out = nn.Linear(c2 * 16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x).flatten(1))


def fit_image_scaling(images: np.ndarray) -> dict:
    """Per-channel mean and standard deviation of the training images."""
    mean = images.mean(axis=(0, 2, 3))
    std = images.std(axis=(0, 2, 3))
    return {"mean": [float(m) for m in mean], "std": [float(s) if s > 0 else 1.0 for s in std]}


def scale_images(images: np.ndarray, scaling: dict) -> torch.Tensor:
    """Images standardized with the training statistics, as a float32 tensor."""
    mean = np.asarray(scaling["mean"]).reshape(1, -1, 1, 1)
    std = np.asarray(scaling["std"]).reshape(1, -1, 1, 1)
    return torch.from_numpy(((images - mean) / std).astype(np.float32))


class TabularMLP(nn.Module):
    """A multi-layer perceptron over the encoded columns of a data frame."""

    def __init__(self, n_inputs: int, n_classes: int, hidden: Sequence[int] = (64, 32)):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "n_classes": n_classes, "hidden": list(hidden)}
        layers: list[nn.Module] = []
        width = n_inputs
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def is_categorical(column: pd.Series) -> bool:
    """Strings, objects and pandas categoricals are one-hot encoded; numbers and bools are not."""
    return (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype))


def split_columns(frame: pd.DataFrame) -> tuple[list, list]:
    """(numeric, categorical) column names; any other dtype is refused."""
    numeric, categorical = [], []
    for name in frame.columns:
        column = frame[name]
        if is_categorical(column):
            categorical.append(name)
        elif pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            numeric.append(name)
        else:
            raise ValueError(f"column {name!r} has dtype {column.dtype}; convert it to a number or a string")
    return numeric, categorical


def _as_strings(column: pd.Series) -> pd.Series:
    # pandas' nullable string dtype keeps missing values missing (astype(str) would
    # turn NaN into the category "nan").
    return column.astype("string")


def fit_tabular_encoding(frame: pd.DataFrame) -> dict:
    """Training mean and std of each numeric column, sorted categories of each categorical one."""
    numeric, categorical = split_columns(frame)
    mean, std = [], []
    for name in numeric:
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values[np.isfinite(values)]
        m = float(finite.mean()) if finite.size else 0.0
        s = float(finite.std()) if finite.size else 0.0
        mean.append(m)
        std.append(s if s > 0 else 1.0)
    categories = [sorted(str(v) for v in _as_strings(frame[name]).dropna().unique()) for name in categorical]
    return {"numeric": numeric, "mean": mean, "std": std, "categorical": categorical, "categories": categories}


def encode_tabular(frame: pd.DataFrame, encoding: dict) -> torch.Tensor:
    """Standardized numerics (missing -> 0, the training mean) then one-hot categoricals.

    A category not seen in training, or a missing one, is all zeros.
    """
    missing = [c for c in encoding["numeric"] + encoding["categorical"] if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the training columns {missing}")
    n = len(frame)
    parts = []
    if encoding["numeric"]:
        values = np.column_stack([frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
                                  for c in encoding["numeric"]])
        z = (values - np.asarray(encoding["mean"])) / np.asarray(encoding["std"])
        parts.append(np.where(np.isfinite(z), z, 0.0))
    for name, cats in zip(encoding["categorical"], encoding["categories"]):
        codes = pd.Index(cats, dtype=object).get_indexer(_as_strings(frame[name]).astype(object))
        onehot = np.zeros((n, len(cats)))
        known = codes >= 0
        onehot[np.flatnonzero(known), codes[known]] = 1.0
        parts.append(onehot)
    return torch.from_numpy(np.hstack(parts).astype(np.float32))


def tabular_width(encoding: dict) -> int:
    """Number of input features the encoding produces."""
    return len(encoding["numeric"]) + sum(len(c) for c in encoding["categories"])
