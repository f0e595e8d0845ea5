"""Performance estimated without labels, from the model's own confidences.

Confidence-based performance estimation (as NannyML's CBPE): when a classifier's
probabilities are calibrated, its expected accuracy on a window is the mean of the
probability it gives its predicted class. The estimate is only as good as that
calibration, which the reference period measures (ECE, calibration slope); it is
stored with ``estimated = true`` and replaced by the realized value once labels
arrive.
"""

from __future__ import annotations

import numpy as np


def estimate_accuracy(confidences) -> dict:
    """Expected accuracy and its standard error from top-class probabilities."""
    conf = np.asarray(confidences, dtype=np.float64)
    conf = conf[np.isfinite(conf)]
    if conf.size == 0:
        raise ValueError("no confidences to estimate accuracy from")
    if np.any((conf < 0) | (conf > 1)):
        raise ValueError("confidences must lie in [0, 1]")
    # each prediction is right with probability c: a sum of Bernoulli(c) variables
    se = float(np.sqrt(np.sum(conf * (1 - conf))) / conf.size)
    return {"accuracy": float(conf.mean()), "accuracy_se": se, "n": int(conf.size)}
