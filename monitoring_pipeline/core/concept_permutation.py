"""Permutation p-values for the two concept-drift signals, valid at any window size.

Null hypothesis: the current period's rows (features and label) are drawn from the
same joint distribution as the reference's. The test holds out part of the reference:

1. The reference rows are split at random (seeded) into a fitting part and a held-out
   part of about half each. A reference forest is fit on the fitting part only.
2. The held-out part and the current rows form the pool. Under the null these rows
   are exchangeable and independent of the reference forest, so the current rows are
   just one of the equally likely ways to draw ``m`` rows from the pool.
3. Each statistic is computed on the current rows and on random ``m``-row draws from
   the pool, each with a small forest fit on the drawn rows:
   - importance: the correlation of the reference forest's feature importances with
     the small forest's (low means the relation moved);
   - performance gap: the small forest's out-of-bag score on its rows minus the
     reference forest's score on the same rows (high means a model of the current
     period explains it better than the reference model does).

Conditional on the fitting part, the permutation distribution is exact, so the
p-values hold their level at any window size; the forests' own randomness is fixed
(one seed), which makes each statistic a function of the drawn rows only. Draws stop
early, as in Besag and Clifford (1991), once every statistic has ``stop_after`` draws
at least as extreme as the observed one (then its p-value is ``stop_after / draws``,
which is at least ``stop_after / n_permutations``: an early stop never turns a
significant result into a non-significant one at that level).

Cost is bounded: one reference forest (at most ``max_rows`` rows) and at most
``n_permutations + 1`` small forests on at most ``max_rows`` current rows.
A permutation tests exchangeability, so a covariate shift alone can be significant
too; the verdict in :func:`concept.concept_drift` also requires the effect (importance
correlation below its floor, or the score gap above the tolerance).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

_TIE = 1e-12  # statistics within this of the observed one count as at least as extreme


@dataclass(frozen=True)
class PermutationTest:
    """The observed test statistics, their p-values (None when a statistic is undefined
    on the observed rows) and what the test used."""

    importance_statistic: float | None  # correlation of importances, test forests
    performance_statistic: float | None  # out-of-bag score of the current forest minus the reference forest's
    importance_p_value: float | None
    performance_p_value: float | None
    n_permutations: int  # draws made (fewer than the maximum when stopped early)
    n_pool: int  # held-out reference rows + current rows the draws come from
    n_current: int  # current rows tested (at most max_rows)


def _score(task: str, y: np.ndarray, pred: np.ndarray) -> float | None:
    """Accuracy, or R^2 (None when the rows' labels do not vary)."""
    if task == "classification":
        return float(np.mean(pred == y))
    total = float(np.square(y - y.mean()).sum())
    return None if total == 0 else 1.0 - float(np.square(y - pred).sum()) / total


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


class _Statistics:
    """Both statistics for any set of pool rows, the reference side computed once."""

    def __init__(self, task, ref_importances, ref_predictions, x_pool, y_pool, params):
        self.task, self.ref_importances, self.ref_predictions = task, ref_importances, ref_predictions
        self.x, self.y, self.params = x_pool, y_pool, params
        self.forest = RandomForestClassifier if task == "classification" else RandomForestRegressor

    def __call__(self, rows: np.ndarray) -> tuple[float | None, float | None]:
        x, y = self.x[rows], self.y[rows]
        with warnings.catch_warnings():  # a row no tree left out: scored as sklearn does, same for every draw
            warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
            model = self.forest(**self.params).fit(x, y)
        if self.task == "classification":
            oob = model.classes_[np.argmax(model.oob_decision_function_, axis=1)]
        else:
            oob = model.oob_prediction_
        own, reference = _score(self.task, y, oob), _score(self.task, y, self.ref_predictions[rows])
        gap = None if own is None or reference is None else own - reference
        return _correlation(self.ref_importances, model.feature_importances_), gap


def check_options(n_permutations: int, stop_after: int, max_rows: int) -> None:
    if n_permutations < 1 or stop_after < 1:
        raise ValueError(f"n_permutations and stop_after must be at least 1, got {n_permutations} and {stop_after}")
    if max_rows < 2:
        raise ValueError(f"max_rows must be at least 2, got {max_rows}")


def _split(n: int, rng: np.random.Generator, max_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Random fitting and held-out parts of ``n`` reference rows, each at most ``max_rows``."""
    order = rng.permutation(n)
    held = n // 2
    return np.sort(order[held:][:max_rows]), np.sort(order[:held][:max_rows])


def permutation_test(
    x_ref: np.ndarray,
    y_ref: np.ndarray,
    x_cur: np.ndarray,
    y_cur: np.ndarray,
    *,
    task: str,
    seed: int,
    n_permutations: int,
    stop_after: int,
    n_estimators: int,
    test_estimators: int,
    max_rows: int,
) -> PermutationTest:
    """Sequential Monte Carlo permutation p-values of the importance and performance
    signals (see the module docstring). Needs at least 2 reference rows."""
    check_options(n_permutations, stop_after, max_rows)
    rng = np.random.default_rng(seed)
    if len(x_cur) > max_rows:
        keep = np.sort(rng.choice(len(x_cur), max_rows, replace=False))
        x_cur, y_cur = x_cur[keep], y_cur[keep]
    fit, held = _split(len(x_ref), rng, max_rows)
    forest = RandomForestClassifier if task == "classification" else RandomForestRegressor
    reference = forest(n_estimators=n_estimators, min_samples_leaf=2, random_state=seed, n_jobs=1)
    reference.fit(x_ref[fit], y_ref[fit])

    x_pool = np.concatenate([x_ref[held], x_cur])
    y_pool = np.concatenate([y_ref[held], y_cur])
    params = dict(n_estimators=test_estimators, min_samples_leaf=2, oob_score=True, random_state=seed, n_jobs=1)
    statistics = _Statistics(task, reference.feature_importances_, reference.predict(x_pool), x_pool, y_pool, params)
    m, n_pool = len(x_cur), len(x_pool)
    observed = statistics(np.arange(n_pool - m, n_pool))

    # A draw where a statistic is undefined counts as at least as extreme (conservative);
    # an observed statistic that is undefined has no p-value and is not followed.
    follow = [o is not None for o in observed]
    exceed, p_values = [0, 0], [None, None]
    done = 0
    while done < n_permutations and any(f and p is None for f, p in zip(follow, p_values)):
        draw = statistics(rng.choice(n_pool, m, replace=False))
        done += 1
        for k, (value, obs) in enumerate(zip(draw, observed)):
            if not follow[k] or p_values[k] is not None:
                continue
            exceed[k] += value is None or (value <= obs + _TIE if k == 0 else value >= obs - _TIE)
            if exceed[k] == stop_after:
                p_values[k] = stop_after / done  # stopped early
    p = [None if not f else (pv if pv is not None else (1 + e) / (1 + done))
         for f, pv, e in zip(follow, p_values, exceed)]
    return PermutationTest(importance_statistic=observed[0], performance_statistic=observed[1],
                           importance_p_value=p[0], performance_p_value=p[1], n_permutations=done,
                           n_pool=n_pool, n_current=m)
