"""Drift injected into real rows, for simulations: the world shifting on a chosen day.

Tabular: ``shift`` moves the numeric features by ``size`` of their standard deviation
in the rows given; ``scale`` multiplies them by ``size`` (an upstream unit change).
Vision: ``brightness`` adds ``size`` to every pixel (clipped to [0, 1]), ``noise`` adds
Gaussian noise of standard deviation ``size``, ``rotation`` turns each image by
``size`` degrees. Seeded, so a simulated day is the same every time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

TABULAR = ("shift", "scale")
VISION = ("brightness", "noise", "rotation")


def inject(frame: pd.DataFrame, kind: str, size: float, *, features: list[str] | None = None,
           image_column: str | None = None, seed: int = 0) -> pd.DataFrame:
    """A copy of ``frame`` with the drift applied."""
    out = frame.copy()
    if kind in TABULAR:
        numeric = [c for c in (features or out.columns) if c != "label" and pd.api.types.is_numeric_dtype(out[c])]
        if not numeric:
            raise ValueError("no numeric features to drift")
        for c in numeric:
            values = out[c].astype(np.float64)
            out[c] = values + size * values.std() if kind == "shift" else values * size
        return out
    if kind in VISION:
        if image_column is None:
            raise ValueError(f"{kind} drift needs the image column")
        rng = np.random.default_rng(seed)
        images = np.stack([np.asarray(x, dtype=np.float32) for x in out[image_column]])
        if kind == "brightness":
            images = np.clip(images + size, 0.0, 1.0)
        elif kind == "noise":
            images = np.clip(images + rng.normal(0.0, size, images.shape), 0.0, 1.0)
        else:
            images = np.clip(ndimage.rotate(images, size, axes=(-2, -1), reshape=False, order=1), 0.0, 1.0)
        out[image_column] = list(images.astype(np.float32))
        return out
    raise ValueError(f"unknown drift kind {kind!r}; choose one of {', '.join(TABULAR + VISION)}")
