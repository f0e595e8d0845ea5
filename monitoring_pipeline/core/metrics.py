"""Evaluation metrics for classification and regression, including calibration.

Wherever scikit-learn has the metric, the value is scikit-learn's. A metric that is
undefined for the data (ROC-AUC with one class present, say) is None, and the reason
is listed under "notes"; it is never replaced by a made-up number.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import expit
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

ECE_BINS = 15


def _validate(y_true, y_pred, y_score):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.size == 0:
        raise ValueError("y_true is empty")
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length; got {y_true.shape}, {y_pred.shape}")
    if y_score is not None:
        y_score = np.asarray(y_score, dtype=np.float64)
        if y_score.shape[0] != y_true.shape[0] or y_score.ndim not in (1, 2):
            raise ValueError(f"y_score must be [n] or [n, n_classes] with n={y_true.size}; got {y_score.shape}")
        if not np.all(np.isfinite(y_score)):
            raise ValueError("y_score has NaN or infinite values")
    return y_true, y_pred, y_score


def expected_calibration_error(correct: np.ndarray, confidence: np.ndarray, n_bins: int = ECE_BINS,
                               weights: np.ndarray | None = None) -> float:
    """Sum over equal-width confidence bins of |accuracy - confidence|, weighted by the bin's
    share of the rows (of their ``weights``, when given)."""
    correct, confidence = np.asarray(correct, dtype=np.float64), np.asarray(confidence, dtype=np.float64)
    w = np.ones_like(confidence) if weights is None else np.asarray(weights, dtype=np.float64)
    if confidence.size == 0 or w.sum() <= 0:
        raise ValueError("no rows to measure calibration on")
    bins = np.clip((confidence * n_bins).astype(int), 0, n_bins - 1)
    gap = np.bincount(bins, weights=w * (correct - confidence), minlength=n_bins)
    return float(np.abs(gap).sum() / w.sum())


def calibration_slope(y: np.ndarray, p: np.ndarray) -> float | None:
    """Slope of the logistic regression of the outcome on logit(p) (1.0 is calibrated).

    Fitted by Newton's method on the two-parameter log-likelihood. None when the
    outcome has one value or the fit does not converge (separable data).
    """
    if y.min() == y.max():
        return None
    p = np.clip(p, 1e-6, 1 - 1e-6)
    x = np.column_stack([np.ones_like(p), np.log(p / (1 - p))])
    beta = np.zeros(2)
    for _ in range(100):
        mu = expit(x @ beta)
        w = mu * (1 - mu)
        hessian = x.T @ (x * w[:, None])
        if np.linalg.cond(hessian) > 1e12:
            return None
        step = np.linalg.solve(hessian, x.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            return float(beta[1])
    return None


def _classification(y_true, y_pred, y_score, labels, notes):
    seen = np.unique(np.concatenate([y_true, y_pred]))
    if labels is None:
        labels = seen
    else:
        labels = np.asarray(labels)
        missing = np.setdiff1d(seen, labels)
        if missing.size:
            raise ValueError(f"labels {missing.tolist()} occur in the data but not in `labels`")
    p, r, f, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0.0)
    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision_macro": float(p.mean()),
        "recall_macro": float(r.mean()),
        "f1_macro": float(f.mean()),
        "per_class": {str(lab): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                 "support": int(support[i])} for i, lab in enumerate(labels)},
        "roc_auc": None, "pr_auc": None, "brier": None, "ece": None, "calibration_slope": None,
    }
    if y_score is None:
        return out
    if y_score.ndim == 2 and y_score.shape[1] == 2 and labels.size <= 2:
        y_score = y_score[:, 1]  # binary as a two-column matrix: the second column is positive
    if y_score.ndim == 1:
        if labels.size > 2:
            raise ValueError("1-D y_score is for binary tasks; pass [n, n_classes] probabilities")
        # scikit-learn's convention: 1 for {0, 1} labels, else the greater label.
        positive = 1 if set(labels.tolist()) <= {0, 1} else labels[-1]
        y = (y_true == positive).astype(int)
        if y.min() == y.max():
            notes.append("ROC-AUC and PR-AUC are undefined: y_true holds one class")
        else:
            out["roc_auc"] = float(skm.roc_auc_score(y, y_score))
            out["pr_auc"] = float(skm.average_precision_score(y, y_score))
        out["brier"] = float(skm.brier_score_loss(y, y_score, pos_label=1))
        correct = ((y_score >= 0.5).astype(int) == y).astype(float)
        out["ece"] = expected_calibration_error(correct, np.maximum(y_score, 1 - y_score))
        out["calibration_slope"] = calibration_slope(y.astype(float), y_score)
        _note_slope(out, notes)
        return out
    if y_score.shape[1] != labels.size:
        raise ValueError(f"y_score has {y_score.shape[1]} columns for {labels.size} classes {labels.tolist()}")
    present = np.unique(y_true)
    if present.size < 2:
        notes.append("ROC-AUC and PR-AUC are undefined: y_true holds one class")
    elif present.size < labels.size:
        notes.append("ROC-AUC and PR-AUC are undefined: some predicted classes never occur in y_true")
    else:
        out["roc_auc"] = float(skm.roc_auc_score(y_true, y_score, multi_class="ovr", labels=labels))
        out["pr_auc"] = float(skm.average_precision_score(label_binarize(y_true, classes=labels), y_score))
    out["brier"] = float(skm.brier_score_loss(y_true, y_score, labels=labels))
    top = y_score.argmax(axis=1)
    correct = (labels[top] == y_true).astype(float)
    confidence = y_score.max(axis=1)
    out["ece"] = expected_calibration_error(correct, confidence)
    out["calibration_slope"] = calibration_slope(correct, confidence)
    _note_slope(out, notes)
    return out


def _note_slope(out: dict, notes: list) -> None:
    if out["calibration_slope"] is None:
        notes.append("calibration slope is undefined: the outcomes are all equal or perfectly separated")


def evaluate_predictions(
    y_true,
    y_pred,
    *,
    y_score=None,
    task: Literal["classification", "regression"] = "classification",
    labels=None,
) -> dict:
    """Metrics of predictions against the truth.

    classification: accuracy; precision, recall and F1 (macro and per class); with
    ``y_score`` (positive-class probabilities, or an [n, n_classes] matrix in sorted
    label order, or in the order of ``labels``) also ROC-AUC, PR-AUC (average precision), Brier score, expected
    calibration error (15 equal-width bins) and calibration slope.
    regression: RMSE, MAE and R^2.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    notes: list[str] = []
    if task == "regression":
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        y_true, y_pred, _ = _validate(y_true, y_pred, None)
        if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
            raise ValueError("regression targets and predictions must be finite")
        out = {"rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
               "mae": float(skm.mean_absolute_error(y_true, y_pred)),
               "r2": float(skm.r2_score(y_true, y_pred)) if y_true.size > 1 else None}
        if y_true.size < 2:
            notes.append("R^2 needs at least two samples")
    else:
        y_true, y_pred, y_score = _validate(y_true, y_pred, y_score)
        out = _classification(y_true, y_pred, y_score, labels, notes)
    out.update(task=task, n=int(np.asarray(y_true).size), notes=notes)
    return out


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """The numeric top-level entries of a metrics dict (what comparisons look at)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n" and np.isfinite(v)}
