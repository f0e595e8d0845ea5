"""Real data sets bundled with scikit-learn, split into a reference and a current window.

Nothing is downloaded: these files ship inside the scikit-learn wheel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits

SPLIT_SEED = 0
REFERENCE_SHARE = 0.7


@dataclass(frozen=True)
class BundledDataset:
    name: str
    modality: str
    description: str
    reference: object
    current: object


def _split(n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    cut = int(n * REFERENCE_SHARE)
    return np.sort(order[:cut]), np.sort(order[cut:])


def breast_cancer() -> BundledDataset:
    """569 biopsies, 30 numeric cell-nucleus measurements (Wisconsin diagnostic data)."""
    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    ref, cur = _split(len(frame))
    return BundledDataset("breast_cancer", "tabular", "Wisconsin breast cancer, 30 numeric features",
                          frame.iloc[ref].reset_index(drop=True), frame.iloc[cur].reset_index(drop=True))


def digits() -> BundledDataset:
    """1,797 handwritten digits as 8x8 grayscale images, pixel values 0..16."""
    images = load_digits().images[:, None, :, :] / 16.0  # [N, 1, 8, 8] in [0, 1]
    ref, cur = _split(images.shape[0])
    return BundledDataset("digits", "vision", "handwritten digits, 8x8 grayscale",
                          images[ref], images[cur])


def bundled_datasets() -> list[BundledDataset]:
    return [breast_cancer(), digits()]
