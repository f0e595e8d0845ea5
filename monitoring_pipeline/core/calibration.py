"""Recalibrating a model's scores on labeled reference rows, for label-free estimation.

A calibration problem here is a score ``s`` in [0, 1] and an outcome ``o`` in {0, 1}
(a binary model's positive-class probability and whether the row is positive; a
class's probability and whether the row is of that class; a top-class confidence and
whether the prediction was right). A calibrator maps ``s`` to ``P(o = 1 | s)``:

- ``none``: the score as it is;
- ``platt``: a logistic regression on ``logit(s)`` (two parameters: smooth, and safe on
  a few dozen rows);
- ``isotonic``: the monotone step function of least squares (no shape assumed, needs
  more rows).

``select_calibrator`` picks one by the expected calibration error of its predictions on
held-out folds (stratified by outcome): a calibrator is used only when it lowers that
error against the raw scores, as NannyML's CBPE does. Every fit takes row weights, so
the same code calibrates on a reference reweighted towards the current inputs (PAPE).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit
from sklearn.isotonic import isotonic_regression
from sklearn.model_selection import StratifiedKFold

from .metrics import expected_calibration_error

KINDS = ("none", "platt", "isotonic")
ECE_BINS = 10
CV_FOLDS = 5
_EPS = 1e-6


def calibration_error(s: np.ndarray, o: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The expected calibration error of scores ``s`` for outcomes ``o`` over ``ECE_BINS``
    equal-width bins (:func:`.metrics.expected_calibration_error`, row-weighted)."""
    return expected_calibration_error(o, s, ECE_BINS, weights)


@dataclass(frozen=True)
class Calibrator:
    """A fitted calibrator; call it on scores to get calibrated probabilities."""

    kind: str
    params: tuple = ()  # platt: (intercept, slope)
    knots: tuple[np.ndarray, np.ndarray] | None = None  # isotonic: distinct scores, fitted values

    def __call__(self, s) -> np.ndarray:
        s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
        if self.kind == "none":
            return s
        if self.kind == "platt":
            a, b = self.params
            return expit(a + b * logit(np.clip(s, _EPS, 1 - _EPS)))
        x, fitted = self.knots  # linear between the knots, constant beyond them (as scikit-learn's)
        return np.clip(np.interp(s, x, fitted), 0.0, 1.0)


def _platt(s: np.ndarray, o: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted maximum likelihood of P(o | s) = expit(a + b logit s), by Newton's method
    with a tiny ridge (separable outcomes stay finite)."""
    x = np.column_stack([np.ones_like(s), logit(np.clip(s, _EPS, 1 - _EPS))])
    beta = np.array([0.0, 1.0])
    ridge = 1e-6 * w.sum()
    for _ in range(50):
        mu = expit(x @ beta)
        grad = x.T @ (w * (o - mu)) - ridge * (beta - [0.0, 1.0])
        hess = (x * (w * mu * (1 - mu))[:, None]).T @ x + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-9:
            break
    return float(beta[0]), float(beta[1])


def fit_calibrator(kind: str, s, o, weights=None) -> Calibrator:
    """The calibrator ``kind`` fitted on scores ``s`` and outcomes ``o`` (row ``weights``)."""
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    o = np.asarray(o, dtype=np.float64)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64)
    if kind == "none":
        return Calibrator("none")
    if kind == "platt":
        if o.min(initial=0.0) == o.max(initial=0.0):  # one outcome: a constant at its value
            return Calibrator("platt", (float(logit(np.clip(o.mean(), _EPS, 1 - _EPS))), 0.0))
        return Calibrator("platt", _platt(s, o, w))
    if kind == "isotonic":
        return Calibrator("isotonic", knots=_isotonic(s, o, w))
    raise ValueError(f"calibrator must be one of {', '.join(KINDS)}, got {kind!r}")


def _isotonic(s: np.ndarray, o: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weighted least-squares monotone fit of ``o`` on ``s`` (pool adjacent violators on
    the distinct scores, ties averaged): scikit-learn's IsotonicRegression without its
    per-call overhead, which dominated 2,000 class-wise refits per estimate."""
    x, where = np.unique(s, return_inverse=True)
    mass = np.bincount(where, weights=w, minlength=x.size)
    keep = mass > 0
    mean = np.bincount(where, weights=w * o, minlength=x.size)[keep] / mass[keep]
    return x[keep], isotonic_regression(mean, sample_weight=mass[keep], y_min=0.0, y_max=1.0)


def _folds(o: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds over the outcome (fewer when a class has fewer rows than folds)."""
    smallest = int(min((o == 1).sum(), (o == 0).sum()))
    k = min(CV_FOLDS, smallest)
    if k < 2:
        return []
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(o.size), o))


def cross_validated_errors(problems: list[tuple[np.ndarray, np.ndarray]], weights=None, seed: int = 0) -> dict:
    """Each calibrator kind's calibration error on held-out folds, averaged over the
    problems (one per class for class-wise calibration); a kind that cannot be
    cross-validated (an outcome seen fewer than twice) is left out."""
    errors: dict[str, list[float]] = {k: [] for k in KINDS}
    for s, o in problems:
        w = np.ones_like(s) if weights is None else weights
        folds = _folds(o, seed)
        if not folds:
            continue
        held = {k: np.empty_like(s) for k in KINDS}
        for train, test in folds:
            for kind in KINDS:
                held[kind][test] = fit_calibrator(kind, s[train], o[train], w[train])(s[test])
        for kind in KINDS:
            errors[kind].append(calibration_error(held[kind], o, w))
    return {k: float(np.mean(v)) for k, v in errors.items() if v}


def select_calibrator(problems: list[tuple[np.ndarray, np.ndarray]], weights=None, seed: int = 0) -> tuple[str, dict]:
    """The kind with the least cross-validated calibration error, ``none`` unless a
    calibrator beats the raw scores; and every kind's error."""
    errors = cross_validated_errors(problems, weights, seed)
    if not errors:
        return "none", errors
    best = min(errors, key=lambda k: (errors[k], KINDS.index(k)))
    return (best if errors[best] < errors["none"] else "none"), errors
