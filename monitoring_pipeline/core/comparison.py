"""Candidate vs baseline: per-metric deltas, a status for each, and one verdict.

A metric "regressed" when it got worse by more than ``regression_tolerance`` and
"improved" when it got better by more than ``improvement_margin`` (both absolute,
both configurable per metric). "Worse" follows the metric's direction: down for
accuracy, up for RMSE or Brier, away from 1.0 for the calibration slope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from .bootstrap import paired_bootstrap, paired_permutation_p
from .metrics import evaluate_predictions, scalar_metrics

Direction = Literal["higher", "lower", "target_one"]
_LOWER = ("loss", "error", "rmse", "mae", "mse", "brier", "ece", "latency")
DEFAULT_PRIMARY = {"classification": "accuracy", "regression": "rmse"}
# Calibration is reported but does not gate by default: a much more accurate model
# whose ECE rose by a few points should not fail a deployment on that alone.
NOT_GATING = frozenset({"ece", "calibration_slope"})


def metric_direction(name: str) -> Direction:
    """Which way is better for a metric, by its name."""
    if name == "calibration_slope":
        return "target_one"
    return "lower" if any(part in name for part in _LOWER) else "higher"


def _gain(name: str, baseline: float, candidate: float) -> float:
    """How much better the candidate is, in the metric's units (negative: worse)."""
    direction = metric_direction(name)
    if direction == "higher":
        return candidate - baseline
    if direction == "lower":
        return baseline - candidate
    return abs(baseline - 1.0) - abs(candidate - 1.0)


def _per_metric(option: float | Mapping, name: str, what: str) -> float:
    value = option.get(name, option.get("default")) if isinstance(option, Mapping) else option
    if value is None:
        raise ValueError(f"{what} has no entry for {name!r} and no 'default'")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value} for {name!r}")
    return float(value)


def _is_predictions(x) -> bool:
    return isinstance(x, Mapping) and "y_true" in x and "y_pred" in x


def compare_models(
    baseline: Mapping,
    candidate: Mapping,
    *,
    regression_tolerance: float | Mapping = 0.05,
    improvement_margin: float | Mapping = 0.01,
    metrics: list[str] | None = None,
    primary_metric: str | None = None,
    gate_metrics: list[str] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Compare a candidate with the baseline.

    ``baseline`` and ``candidate`` are metric dicts (name -> value), or per-example
    predictions on the same data: dicts with "y_true", "y_pred" and optionally
    "y_score", "task" and "labels". Predictions add, for each metric they support, a
    paired bootstrap interval (``confidence``, ``n_bootstrap`` resamples) and the
    p-value of a paired permutation test (as many permutations); the change is
    significant when that p-value is below 1 - ``confidence``.

    Returns "metrics" (name -> baseline, candidate, delta, direction, status, gates
    and the interval), "status" (regressed if any gating metric regressed, else the
    primary metric's improved / unchanged), "metric" and "delta" of the primary
    metric, the lists "regressed" and "improved", and "confirmed": whether a gating
    regression is significant (always true without intervals). ``gate_metrics`` names the
    metrics whose regression fails the comparison; by default all but calibration
    (ECE and calibration slope).
    """
    intervals: dict = {}
    task = "classification"
    if _is_predictions(baseline) and _is_predictions(candidate):
        task = baseline.get("task", "classification")
        y_true = np.asarray(baseline["y_true"])
        if not np.array_equal(y_true, np.asarray(candidate["y_true"])):
            raise ValueError("baseline and candidate must be predictions on the same data (y_true differs)")
        labels = baseline.get("labels")
        if task == "classification" and labels is None:
            labels = np.unique(np.concatenate([y_true, np.asarray(baseline["y_pred"]),
                                               np.asarray(candidate["y_pred"])]))
        base_m = scalar_metrics(evaluate_predictions(y_true, baseline["y_pred"], y_score=baseline.get("y_score"),
                                                     task=task, labels=labels))
        cand_m = scalar_metrics(evaluate_predictions(y_true, candidate["y_pred"], y_score=candidate.get("y_score"),
                                                     task=task, labels=labels))
    elif _is_predictions(baseline) or _is_predictions(candidate):
        raise ValueError("compare two metric dicts or two prediction sets, not one of each")
    else:
        base_m, cand_m = scalar_metrics(dict(baseline)), scalar_metrics(dict(candidate))
    names = [m for m in (metrics or base_m) if m in base_m and m in cand_m]
    if metrics is not None and len(names) < len(metrics):
        missing = sorted(set(metrics) - set(names))
        raise ValueError(f"metrics {missing} are not in both the baseline and the candidate")
    if not names:
        raise ValueError("the baseline and the candidate have no metric in common")
    if _is_predictions(baseline):
        if not 0 < confidence < 1 or n_bootstrap < 1:
            raise ValueError("confidence must be in (0, 1) and n_bootstrap >= 1")
        label_array = None if labels is None else np.asarray(labels)
        intervals = paired_bootstrap(task, y_true, baseline, candidate, label_array, set(names),
                                     n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
        p_values = paired_permutation_p(task, y_true, baseline, candidate, label_array, set(names),
                                        n_permutations=n_bootstrap, seed=seed)
        for name, p in p_values.items():
            intervals.setdefault(name, {"ci_low": None, "ci_high": None})
            intervals[name].update(p_value=p, significant=bool(p < 1 - confidence))

    rows = {}
    for name in names:
        b, c = base_m[name], cand_m[name]
        gain = _gain(name, b, c)
        if gain < -_per_metric(regression_tolerance, name, "regression_tolerance"):
            status = "regressed"
        elif gain > _per_metric(improvement_margin, name, "improvement_margin"):
            status = "improved"
        else:
            status = "unchanged"
        gates = name in gate_metrics if gate_metrics is not None else name not in NOT_GATING
        rows[name] = {"baseline": b, "candidate": c, "delta": c - b,
                      "direction": metric_direction(name), "status": status, "gates": gates,
                      **{"ci_low": None, "ci_high": None, "p_value": None, "significant": None,
                         **intervals.get(name, {})}}
    primary = primary_metric or DEFAULT_PRIMARY.get(task)
    if primary not in rows:
        if primary_metric is not None:
            raise ValueError(f"primary metric {primary_metric!r} is not compared")
        primary = names[0]
    regressed = [n for n, r in rows.items() if r["status"] == "regressed"]
    improved = [n for n, r in rows.items() if r["status"] == "improved"]
    gating = [n for n in regressed if rows[n]["gates"]]
    # With predictions, a regression is confirmed only by a metric whose paired test
    # finds it significant (PR-AUC has no such test); with metric dicts there is no
    # test to ask, and the tolerance alone decides. Noise must not fail a gate.
    tested = bool(intervals)
    confirmed = [n for n in gating if rows[n]["significant"] is True or not tested]
    return {
        "metrics": rows,
        "metric": primary,
        "delta": rows[primary]["delta"],
        "status": "regressed" if gating else rows[primary]["status"],
        "confirmed": bool(confirmed),
        "regressed": regressed,
        "improved": improved,
    }
