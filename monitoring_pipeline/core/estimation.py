"""Performance estimated without labels, and when not to trust the estimate.

Labels arrive days or weeks after the predictions; until then the model's own scores
are the evidence. :func:`estimate_performance` estimates a window's metrics from them:

- ``cbpe`` (confidence-based performance estimation, as NannyML's CBPE): the scores are
  recalibrated on labeled reference rows (isotonic or Platt, chosen by cross-validated
  calibration error, only when it helps; :mod:`.calibration`). Each current row's true
  class is then a draw from its calibrated probabilities, and the window's metrics are
  their expected values: accuracy is the mean probability of the predicted class,
  precision, recall, F1 (macro and per class) and one-vs-rest ROC-AUC come from the
  drawn labels against the predictions and the model's scores.
- ``pape`` (the idea of PAPE, Bialek et al. 2024): the reference rows are weighted by
  density ratios ``p_current(x) / p_reference(x)`` (:mod:`.density_ratio`) before the
  calibration is fitted, so it is the calibration of the inputs the window has. Under
  covariate shift the calibration curve moves (the scores are not sufficient for the
  inputs); weighting follows it, plain CBPE does not.
- ``dle`` for regression (:mod:`.dle`).

A binary model's positive-class probability is calibrated directly. A multiclass
model's class probabilities are calibrated one class against the rest (renormalised)
for the per-class metrics, and its top-class confidence against whether the prediction
was right for the accuracy ("top-label" calibration: the quantity accuracy is made of,
fitted on every reference row). A source that logged only the top-class confidence
gets the accuracy alone.

**Interval.** ``low`` and ``high`` bound the value the metric will have when the
window's labels arrive (a predictive interval, level ``1 - alpha``). Each of
``n_boot`` replicates refits the calibrator on a bootstrap resample of the reference
(the calibration fit's uncertainty) and draws the window's labels from the refitted
probabilities (the window's sampling error); the interval is the quantiles of the
replicates' metrics (widened to hold the estimate when they exclude it).

**Reliability.** An estimate is marked ``reliable: False``, with the reason in words,
when the calibration rests on fewer than ``MIN_REFERENCE`` labeled rows, or when the
current inputs leave the reference's support: a classifier tells them from the
reference's almost perfectly, or the density-ratio weights leave too small an effective
sample (:class:`.density_ratio.Support`). The accuracy interval of such an estimate holds
the current rows outside the support (density ratio above 20) at anything from 0 to 1:
it says how little the number is worth. Without inputs ``X`` the check runs on the
model's scores instead (a window whose scores the reference never produced). What no
check can see is a change of the relation between inputs and labels (concept drift)
that leaves the inputs as they were: the estimate then stays confident and wrong
until labels arrive, which is why the realized value replaces it.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .calibration import Calibrator, calibration_error, fit_calibrator, select_calibrator
from .density_ratio import Support, estimate_support

METHODS = ("cbpe", "pape", "dle")
CLASSIFICATION_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")
PER_CLASS = re.compile(r"^(precision|recall|f1)_(.+)$")
DEFAULT_METRICS = ("accuracy", "f1_macro", "roc_auc")
MIN_REFERENCE = 50  # labeled reference rows a calibration may rest on
MIN_SUPPORT_ROWS = 5  # current rows below which the support is not checked
N_BOOT = 200
N_DRAWS = 200  # label draws under the full calibration, for the point estimates


def estimate_performance(reference: dict, current: dict, *, method: str = "cbpe",
                         metrics=DEFAULT_METRICS, task: str = "classification", seed: int = 0,
                         alpha: float = 0.05, n_boot: int = N_BOOT) -> dict:
    """The window's metrics estimated without its labels; see the module docstring.

    ``reference``: ``y_true``, ``y_pred`` and ``y_score`` (the positive-class probability
    [n] of a binary model, or class probabilities [n, k] in the order of ``classes``,
    default the sorted labels), or instead of ``y_score`` the top-class ``confidence``
    [n]; optionally ``X`` (the inputs: an array or a DataFrame). ``current``: the same
    without ``y_true``. Regression (``task="regression"``): ``y_true``, ``y_pred`` and
    ``X``, estimated by DLE (``method`` "dle", or "pape" to weight it by density ratios).

    Returns one entry per metric (``estimate``, ``low``, ``high``, ``method``,
    ``reliable``, ``reason``), and ``calibration``, ``support``, the overall
    ``reliable`` and ``reason``, ``method``, ``task``, ``n_current``, ``n_reference``,
    ``n_dropped`` (current rows left out for a missing prediction or score).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 20:
        raise ValueError(f"n_boot must be at least 20, got {n_boot}")
    if task == "regression":
        from .dle import estimate_regression

        names = REGRESSION_METRICS if tuple(metrics) == DEFAULT_METRICS else tuple(metrics)
        return estimate_regression(reference, current, weighted=method == "pape", metrics=names, seed=seed,
                                   alpha=alpha)
    if task != "classification":
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if method == "dle":
        raise ValueError("method 'dle' estimates regression metrics; use 'cbpe' or 'pape' for classification")
    return _classification(reference, current, method, tuple(metrics), seed, alpha, n_boot)


# --- inputs -------------------------------------------------------------------------------

def _column(side: dict, key: str, name: str) -> np.ndarray:
    if key not in side or side[key] is None:
        raise ValueError(f"{name} needs '{key}'")
    return np.asarray(side[key])


def _scores(side: dict, name: str, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(class scores [n] or [n, k], top-class confidence [n]) of one side."""
    score = side.get("y_score")
    if score is not None:
        score = np.asarray(score, dtype=np.float64)
        if score.ndim not in (1, 2) or score.shape[0] != n:
            raise ValueError(f"{name} y_score must be [n] or [n, k] with n={n}; got shape {score.shape}")
        finite = score[np.isfinite(score)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise ValueError(f"{name} y_score must be probabilities in [0, 1]")
        conf = np.maximum(score, 1 - score) if score.ndim == 1 else score.max(axis=1)
        return score, conf
    conf = side.get("confidence")
    if conf is None:
        raise ValueError(f"{name} needs 'y_score' (class probabilities) or 'confidence'")
    conf = np.asarray(conf, dtype=np.float64)
    if conf.shape != (n,):
        raise ValueError(f"{name} confidence must be [n] with n={n}; got shape {conf.shape}")
    finite = conf[np.isfinite(conf)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"{name} confidence must be probabilities in [0, 1]")
    return None, conf


def _present(labels: np.ndarray) -> np.ndarray:
    return np.array([not (v is None or (isinstance(v, float) and v != v) or v is pd.NA) for v in labels], dtype=bool)


def _rows_of(x, keep: np.ndarray):
    if x is None:
        return None
    if isinstance(x, pd.DataFrame):
        return x.iloc[np.flatnonzero(keep)].reset_index(drop=True)
    return np.asarray(x)[keep]


def _side(side: dict, name: str, labeled: bool) -> dict:
    if not isinstance(side, dict):
        raise ValueError(f"{name} must be a dict of arrays")
    pred = _column(side, "y_pred", name)
    n = pred.shape[0]
    if pred.ndim != 1:
        raise ValueError(f"{name} y_pred must be 1-D")
    score, conf = _scores(side, name, n)
    keep = _present(pred) & np.isfinite(conf) & (np.isfinite(score).all(axis=1) if score is not None and score.ndim == 2
                                                 else True)
    y = None
    if labeled:
        y = _column(side, "y_true", name)
        if y.shape != (n,):
            raise ValueError(f"{name} y_true and y_pred must have one length; got {y.shape[0]} and {n}")
        keep &= _present(y)
    x = side.get("X")
    if x is not None and len(x) != n:
        raise ValueError(f"{name} X has {len(x)} rows for {n} predictions")
    return {"y_pred": pred[keep], "y_true": None if y is None else y[keep],
            "y_score": None if score is None else score[keep], "confidence": conf[keep],
            "X": _rows_of(x, keep), "n_dropped": int((~keep).sum())}


def _classes(reference: dict, ref: dict, cur: dict) -> np.ndarray:
    given = reference.get("classes")
    if given is not None:
        classes = np.asarray(given)
    else:
        classes = np.unique(np.concatenate([ref["y_true"], ref["y_pred"]]).astype(object))  # the reference's
    unknown = sorted({str(v) for v in np.concatenate([ref["y_true"], ref["y_pred"], cur["y_pred"]])}
                     - {str(c) for c in classes})
    if unknown:
        raise ValueError(f"labels {unknown[:10]} are not among the classes {classes.tolist()}")
    score = ref["y_score"]
    if score is not None and score.ndim == 2 and score.shape[1] != classes.size:
        raise ValueError(f"y_score has {score.shape[1]} columns for {classes.size} classes {classes.tolist()}; "
                         "pass 'classes' naming the columns")
    if score is not None and score.ndim == 1 and classes.size > 2:
        raise ValueError("1-D y_score is for binary models; pass [n, k] class probabilities")
    return classes


def _index(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    lookup = {str(c): i for i, c in enumerate(classes)}
    return np.array([lookup[str(v)] for v in labels], dtype=np.int64)


def _class_probabilities(score: np.ndarray, k: int) -> np.ndarray:
    """[n, k] probabilities from a binary model's positive-class scores or a [n, k] matrix."""
    if score.ndim == 1:
        return np.column_stack([1 - score, score])
    return score


# --- metrics of drawn labels --------------------------------------------------------------

class _Scorer:
    """The metrics of the window for labels drawn ``y`` (class indices), predictions fixed."""

    def __init__(self, names: tuple, pred: np.ndarray, scores: np.ndarray | None, k: int, classes: np.ndarray):
        self.names, self.pred, self.k, self.classes = names, pred, k, classes
        self.ranks = None
        if scores is not None and "roc_auc" in names:
            cols = [scores[:, 1]] if k == 2 else [scores[:, c] for c in range(k)]
            self.ranks = np.stack([rankdata(c) for c in cols])

    def __call__(self, y: np.ndarray) -> dict[str, float]:
        k, pred = self.k, self.pred
        tp = np.bincount(pred[pred == y], minlength=k).astype(np.float64)
        n_pred = np.bincount(pred, minlength=k).astype(np.float64)
        n_true = np.bincount(y, minlength=k).astype(np.float64)
        seen = (n_pred > 0) | (n_true > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(n_pred > 0, tp / n_pred, 0.0)
            recall = np.where(n_true > 0, tp / n_true, 0.0)
            f1 = np.where(n_pred + n_true > 0, 2 * tp / (n_pred + n_true), 0.0)
        out = {}
        for name in self.names:
            if name == "accuracy":
                out[name] = float(tp.sum() / pred.size)
            elif name in ("precision_macro", "recall_macro", "f1_macro"):
                values = {"precision_macro": precision, "recall_macro": recall, "f1_macro": f1}[name]
                out[name] = float(values[seen].mean())
            elif name == "roc_auc":
                out[name] = self._auc(y, n_true)
            else:
                kind, label = PER_CLASS.match(name).groups()
                c = int(np.flatnonzero([str(v) == label for v in self.classes])[0])
                out[name] = float({"precision": precision, "recall": recall, "f1": f1}[kind][c])
        return out

    def _auc(self, y: np.ndarray, n_true: np.ndarray) -> float:
        if self.ranks is None:
            return float("nan")
        if self.k == 2:
            targets = [1]
        else:
            if (n_true == 0).any():
                return float("nan")  # one-vs-rest needs every class present
            targets = list(range(self.k))
        values = []
        for row, c in enumerate(targets):
            positive = y == c
            n1 = positive.sum()
            n0 = y.size - n1
            if n1 == 0 or n0 == 0:
                return float("nan")
            values.append((self.ranks[row][positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
        return float(np.mean(values))


def _check_metrics(names: tuple, classes: np.ndarray, has_scores: bool) -> None:
    labels = {str(c) for c in classes}
    for name in names:
        match = PER_CLASS.match(name)
        if name in CLASSIFICATION_METRICS or (match and match.group(2) in labels and name not in
                                              ("precision_macro", "recall_macro", "f1_macro")):
            continue
        raise ValueError(f"cannot estimate {name!r}; choose from {', '.join(CLASSIFICATION_METRICS)} or "
                         f"precision_/recall_/f1_<class> with a class of {sorted(labels)}")


# --- calibration of the two kinds of problem ----------------------------------------------

class _Calibration:
    """The calibrators of one reference (optionally weighted) and what they give a window."""

    def __init__(self, ref: dict, y: np.ndarray, k: int, weights: np.ndarray | None, seed: int):
        self.k = k
        self.classwise = ref["y_score"] is not None
        if self.classwise:
            probs = _class_probabilities(ref["y_score"], k)
            cols = [1] if k == 2 else list(range(k))
            self.problems = [(probs[:, c], (y == c).astype(np.float64)) for c in cols]
            self.columns = cols
        else:
            self.problems = []
        # accuracy: the confidence of the predicted class against whether it was right
        correct = (_index(ref["y_pred"], ref["classes"]) == y).astype(np.float64)
        self.top = (ref["confidence"], correct) if k > 2 or not self.classwise else None
        self.weights = weights
        self.kind, errors = select_calibrator(self.problems or [self.top], weights, seed)
        self.top_kind, top_errors = (select_calibrator([self.top], weights, seed) if self.top and self.problems
                                     else (self.kind, errors))
        headline = top_errors if self.top else errors
        kind = self.top_kind if self.top else self.kind
        s, o = self.top if self.top else self.problems[0]
        self.report = {"method": kind, "ece_before": calibration_error(s, o, weights),
                       "ece_after": headline.get(kind) if headline else None,
                       "cross_validated_ece": headline, "classwise_method": self.kind if self.problems else None}

    def fit(self, rows: np.ndarray | None = None) -> tuple[list[Calibrator], Calibrator | None]:
        """The calibrators fitted on the reference ``rows`` (all rows by default)."""
        take = (lambda a: a) if rows is None else (lambda a: a[rows])
        w = None if self.weights is None else take(self.weights)
        classwise = [fit_calibrator(self.kind, take(s), take(o), w) for s, o in self.problems]
        top = fit_calibrator(self.top_kind, take(self.top[0]), take(self.top[1]), w) if self.top else None
        return classwise, top

    def apply(self, fitted, cur: dict) -> tuple[np.ndarray | None, np.ndarray]:
        """The window's calibrated class probabilities [m, k] (None without class scores)
        and each row's probability that its prediction is right [m]."""
        classwise, top = fitted
        probs = None
        if classwise:
            raw = _class_probabilities(cur["y_score"], self.k)
            if self.k == 2:
                p1 = classwise[0](raw[:, 1])
                probs = np.column_stack([1 - p1, p1])
            else:
                probs = np.column_stack([cal(raw[:, c]) for cal, c in zip(classwise, self.columns)])
                total = probs.sum(axis=1, keepdims=True)
                probs = np.where(total > 0, probs / np.where(total > 0, total, 1.0), 1.0 / self.k)
        if top is not None:
            right = top(cur["confidence"])
        else:
            right = probs[np.arange(probs.shape[0]), cur["pred_index"]]
        return probs, right


def _draw(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class index per row, drawn from its probabilities."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1)) * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


# --- the estimate -------------------------------------------------------------------------

def _support(ref: dict, cur: dict, method: str, seed: int) -> tuple[Support | None, str]:
    """The density-ratio fit on the inputs (on the scores when no inputs are given), and
    what it was fitted on; (None, why) when the window is too small to check."""
    if ref["X"] is not None and cur["X"] is not None:
        basis = "inputs"
        ref_x, cur_x = ref["X"], cur["X"]
    elif method == "pape":
        raise ValueError("method 'pape' needs the inputs 'X' of both the reference and the current rows")
    else:
        basis = "scores"
        ref_x = ref["y_score"] if ref["y_score"] is not None else ref["confidence"]
        cur_x = cur["y_score"] if cur["y_score"] is not None else cur["confidence"]
    if len(cur_x) < MIN_SUPPORT_ROWS:
        return None, f"not checked: {len(cur_x)} current rows"
    return estimate_support(ref_x, cur_x, seed=seed), basis


def _classification(reference: dict, current: dict, method: str, names: tuple, seed: int, alpha: float,
                    n_boot: int) -> dict:
    ref, cur = _side(reference, "reference", True), _side(current, "current", False)
    if ref["y_pred"].size == 0:
        raise ValueError("the reference has no labeled rows with predictions and scores to calibrate on")
    if cur["y_pred"].size == 0:
        raise ValueError(f"no current rows to estimate from ({cur['n_dropped']} dropped for a missing prediction "
                         "or score)")
    if (ref["y_score"] is None) != (cur["y_score"] is None):
        # one side has class scores, the other only confidences: both use confidences
        ref["y_score"] = cur["y_score"] = None
    classes = _classes(reference, ref, cur)
    k = classes.size
    ref["classes"] = classes
    if k < 2:
        raise ValueError(f"estimation needs at least two classes; the reference has {classes.tolist()}")
    has_scores = ref["y_score"] is not None
    _check_metrics(names, classes, has_scores)
    y = _index(ref["y_true"], classes)
    cur["pred_index"] = _index(cur["y_pred"], classes)

    support, basis = _support(ref, cur, method, seed)
    weights = support.weights if (method == "pape" and support is not None) else None
    calibration = _Calibration(ref, y, k, weights, seed)

    raw_scores = _class_probabilities(cur["y_score"], k) if has_scores else None
    scorer = _Scorer(names, cur["pred_index"], raw_scores, k, classes)
    rng = np.random.default_rng(seed)
    m = cur["pred_index"].size
    full = calibration.fit()
    probs, right = calibration.apply(full, cur)

    # An estimate that cannot be trusted says so in its interval too: the accuracy of the
    # rows outside the reference's support could be anything in [0, 1] (see _accuracy_bounds).
    outside = support.unsupported if (support is not None and support.problem() and basis == "inputs") else None
    inside = None if outside is None or not outside.any() else ~outside

    def draw_metrics(probs_b, right_b) -> dict:
        if probs_b is not None:
            y = _draw(probs_b, rng)
            out = scorer(y)
            hit = y == cur["pred_index"]
        else:
            hit = rng.random(m) < right_b  # accuracy alone: each prediction right or not
            out = {"accuracy": float(hit.mean())}
        if inside is not None:
            out["accuracy_inside"] = float(hit[inside].mean()) if inside.any() else float("nan")
        return out

    point = {}
    # accuracy is the mean of ``right`` in closed form; the other metrics average label draws
    draws = [draw_metrics(probs, right) for _ in range(N_DRAWS)] if set(names) != {"accuracy"} else []
    replicates = []
    n = y.size
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)
        replicates.append(draw_metrics(*calibration.apply(calibration.fit(rows), cur)))
    for name in names:
        point[name] = float(np.mean(right)) if name == "accuracy" else _nanmean([d.get(name) for d in draws])

    overall_reason = ""
    if n < MIN_REFERENCE:
        overall_reason = f"calibration rests on {n} labeled reference rows; at least {MIN_REFERENCE} are needed"
    elif support is not None and support.problem():
        overall_reason = support.problem() + ("" if basis == "inputs" else " (judged on the model's scores)")
    result = {}
    for name in names:
        values = np.array([r.get(name, np.nan) for r in replicates], dtype=np.float64)
        values = values[np.isfinite(values)]
        entry = {"estimate": None, "low": None, "high": None, "method": method, "reliable": False, "reason": ""}
        if name != "accuracy" and not has_scores:
            entry["reason"] = f"{name} needs class probabilities; the scores hold only the top-class confidence"
        elif point[name] is None or values.size < n_boot / 2:
            entry["reason"] = (f"{name} is undefined in most draws of the window's labels "
                               "(a class absent from the window)")
        else:
            low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
            if name == "accuracy" and inside is not None:
                low, high = _accuracy_bounds(replicates, float(outside.mean()), alpha)
            # Refits on resamples that disagree with the full fit (a fragile calibration) can
            # leave the estimate outside their quantiles: the interval is widened to hold it.
            low, high = min(low, point[name]), max(high, point[name])
            entry.update(estimate=point[name], low=float(low), high=float(high), reliable=not overall_reason,
                         reason=overall_reason)
        result[name] = entry
    result.update(
        calibration={**calibration.report, "n_reference": int(n)},
        support={**(support.to_dict() if support is not None else
                    {"domain_auc": None, "ess": None, "ess_share": None}), "basis": basis},
        reliable=not overall_reason, reason=overall_reason, method=method, task="classification",
        n_current=int(m), n_reference=int(n), n_dropped=cur["n_dropped"], alpha=alpha)
    return result


def _accuracy_bounds(replicates: list[dict], outside: float, alpha: float) -> tuple[float, float]:
    """The accuracy interval when a share ``outside`` of the rows lies outside the reference's
    support: the calibrated interval of the rows inside, and anything from 0 to 1 for the
    rest (the worst-case bounds of Manski's partial identification)."""
    inside = np.array([r["accuracy_inside"] for r in replicates], dtype=np.float64)
    inside = inside[np.isfinite(inside)]
    low, high = np.quantile(inside, [alpha / 2, 1 - alpha / 2]) if inside.size else (0.0, 1.0)
    return (1 - outside) * low, (1 - outside) * high + outside


def metric_entries(result: dict) -> dict[str, dict]:
    """The per-metric entries of an :func:`estimate_performance` result (the dicts with an
    ``estimate``), without its calibration, support and other keys."""
    return {name: e for name, e in result.items() if isinstance(e, dict) and "estimate" in e}


def _nanmean(values) -> float | None:
    a = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size >= len(values) / 2 else None

