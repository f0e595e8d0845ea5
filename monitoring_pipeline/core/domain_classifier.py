"""Drift by a domain classifier: can a model tell the current rows from the reference's?

A classifier is trained to tell reference rows (label 0) from current rows (label 1).
If the two come from one distribution, no model does better than chance on rows it
did not see; a shift it can learn shows as an area under the ROC curve (AUC) above 0.5,
and its weights name the columns that tell the two apart.

The model is a logistic regression on each column standardised and on its square
(also standardised), with a strong L2 penalty (``C = 0.01``) and balanced class
weights. The linear terms see a moved mean, the squares a changed spread; on ~2,000
rows of 16 to 64 columns a fit takes about 10 ms on one thread. A gradient-boosted
forest was measured as the alternative: on real digits (1,000 reference vs 100 current
images, two folds, 20 windows each) it had no more power than this model with
``C = 0.1`` (rotation 15 degrees: both 1.0; classes 0-4 only: 0.95 vs 0.90 in pixels,
1.0 vs 1.0 in principal coordinates; a 1.6x wider spread of two of 16 Gaussian
columns: 0.80 vs 1.0) at 4 to 40 times the time. The stronger penalty helps small
windows (a 1 SD shift of one of 6 columns, 30 current rows against 1,000: rejected in
23-26 of 30 windows with ``C = 0.01`` against 22-24 with 0.1 and 1.0) and changed nothing
on digits. ``benchmarks/domain_classifier.py`` measures level and power.

**Cross-fitting.** Rows are split into ``n_folds`` stratified folds (each fold keeps the
two sides' proportions, so 1,000 reference rows vs 30 current rows still gives every
fold both kinds); a model fitted on the other folds scores each fold. The AUC is that
of all rows' out-of-fold scores, every row scored by a model that never saw it.

**The p-value** (H0: reference and current rows come from one distribution). Given its
model, a held-out fold's scores are independent draws from one distribution under H0,
so the one-sided Mann-Whitney U test of that fold's current scores against its
reference scores is exact. The folds' tests are not independent of one another
(each fold's rows trained the other folds' models; on null data the AUCs of two
halves correlate by about 0.65), so they are combined by Bonferroni,
``p = min(1, n_folds * min_j p_j)``, valid under any dependence. The pooled AUC's own
Mann-Whitney p-value would not be: its null spread is about 1.3 times the
fixed-score formula (below), and the test would over-reject. A permutation test of
the whole procedure would be exact too, but a report corrected by Holm needs p-values
down to alpha / n_features, hence hundreds of refits per feature. Two folds (the
default) give each test half of the rows; more folds give each model more training
rows but each test fewer, and the Bonferroni factor grows (a 0.5 SD mean shift of two
of 16 columns, 100 current rows against 1,000: rejected in 33 of 40 windows with five
folds, 35 of 40 with two).

**Effect size and thresholds.** The effect is ``2 AUC - 1`` (0 at chance, 1 when the
model separates every row). For a Gaussian mean shift of ``d`` standard deviations the
best classifier's AUC is ``Phi(d / sqrt 2)`` (the chance that a current value exceeds
a reference value: their difference is N(d, 2)), so the project's shifts of 0.236 and
0.478 SD (a JS distance of 0.1 and 0.2) read 0.1325 and 0.2646: see
:func:`shift_effect`.

**Noise floor.** With no shift, ``2 AUC - 1`` of a fixed score over ``n`` and ``m`` rows
has mean 0 and standard deviation ``sqrt((n + m + 1) / (3 n m))`` (the Mann-Whitney
variance), and ``E|2 AUC - 1|`` is ``sqrt(2 / pi)`` times that. Cross-fitted scores
spread more, because the folds' errors correlate: measured over 150 null windows
each of skewed columns (2, 16 and 64 of them; 30, 100 and 1,000 current rows against
1,000, and 60 against 60) the ratio of the observed ``E|2 AUC - 1|`` to the
fixed-score value was 1.17 to 1.35, mean 1.29. The floor is ``CROSS_FIT_SPREAD = 1.3``
times the fixed-score value (two folds; ``test_domain_classifier.py`` rechecks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from .embedding import numeric_rows, one_thread
from .stattests import SignificanceResult

N_FOLDS = 2
PENALTY_C = 0.01  # inverse L2 strength on standardised columns
TOP_FEATURES = 5  # most discriminating features named
CROSS_FIT_SPREAD = 1.3  # null spread of the cross-fitted AUC over that of a fixed score (measured, see above)


def shift_effect(d: float) -> float:
    """``2 AUC - 1`` of the best classifier for a Gaussian mean shift of ``d`` standard
    deviations: ``2 Phi(d / sqrt 2) - 1`` (0.236 -> 0.1325, 0.478 -> 0.2646)."""
    return float(2 * stats.norm.cdf(d / math.sqrt(2)) - 1)


def auc_noise_floor(n: int, m: int) -> float:
    """Expected ``|2 AUC - 1|`` of the cross-fitted classifier on ``n`` reference and ``m``
    current rows of one distribution (see the module's docstring)."""
    if n < 1 or m < 1:
        return 0.0
    return CROSS_FIT_SPREAD * math.sqrt(2 / math.pi) * math.sqrt((n + m + 1) / (3 * n * m))


@dataclass(frozen=True)
class DomainClassifierResult:
    """A cross-fitted domain classifier's verdict on reference vs current rows."""

    auc: float  # of the out-of-fold scores, current rows the positive class
    p_value: float  # Bonferroni over the folds' exact one-sided Mann-Whitney tests
    fold_p_values: tuple[float, ...]
    n_ref: int  # rows used (finite)
    n_cur: int
    n_dropped_ref: int  # rows left out for a NaN or an infinity
    n_dropped_cur: int
    n_folds: int
    # The most discriminating features, largest first: {"feature", "importance"}, the
    # importance being the feature's share of the models' absolute standardised weight
    # (its linear and squared terms, averaged over the folds). Empty without names.
    features: list[dict] = field(default_factory=list)

    @property
    def effect(self) -> float:
        """``2 AUC - 1``: 0 at chance, 1 when every current row outscores every reference row."""
        return 2 * self.auc - 1

    @property
    def noise_floor(self) -> float:
        return auc_noise_floor(self.n_ref, self.n_cur)

    def significance(self) -> SignificanceResult:
        return SignificanceResult("domain_classifier", self.auc, self.p_value)


def _rows(x, side: str) -> np.ndarray:
    return numeric_rows(x, f"{side} rows", columns="features").astype(np.float64, copy=False)


def _quadratic(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns standardised on ``train``, and their squares standardised likewise."""
    def standardise(a, b):
        mu, sd = a.mean(axis=0), a.std(axis=0)
        sd[sd == 0] = 1.0
        return (a - mu) / sd, (b - mu) / sd

    a, b = standardise(train, test)
    a2, b2 = standardise(a * a, b * b)
    return np.hstack([a, a2]), np.hstack([b, b2])


def domain_classifier_test(ref_rows, cur_rows, *, feature_names: list[str] | None = None, seed: int = 0,
                           n_folds: int = N_FOLDS, top: int = TOP_FEATURES) -> DomainClassifierResult:
    """Train a classifier to tell ``cur_rows`` from ``ref_rows`` ([rows, features] each),
    cross-fitted over ``n_folds`` stratified folds; see the module for the test.

    Rows with a NaN or an infinity are dropped and counted (``n_dropped_ref``,
    ``n_dropped_cur``). A ValueError names the problem when a side has fewer than two
    finite rows, the sides' widths differ, or ``feature_names`` does not name every column.
    """
    ref, cur = _rows(ref_rows, "reference"), _rows(cur_rows, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference rows have {ref.shape[1]} features and current rows {cur.shape[1]}")
    if feature_names is not None and len(feature_names) != ref.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names for {ref.shape[1]} features")
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    keep_ref, keep_cur = np.isfinite(ref).all(axis=1), np.isfinite(cur).all(axis=1)
    ref, cur = ref[keep_ref], cur[keep_cur]
    for side, a, kept in (("reference", ref, keep_ref), ("current", cur, keep_cur)):
        if a.shape[0] < 2:
            raise ValueError(f"the {side} side has {a.shape[0]} finite rows ({kept.size - a.shape[0]} dropped "
                             "for NaN or infinite values); the domain classifier needs at least 2 a side")
    n, m = ref.shape[0], cur.shape[0]
    k = min(n_folds, n, m)
    x = np.vstack([ref, cur])
    y = np.concatenate([np.zeros(n, dtype=int), np.ones(m, dtype=int)])
    scores = np.empty(n + m)
    fold_p, weights = [], np.zeros(ref.shape[1])
    with one_thread():  # small fits: threads only spin against each other on a busy machine
        for train, test in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
            a, b = _quadratic(x[train], x[test])
            model = LogisticRegression(C=PENALTY_C, class_weight="balanced", max_iter=1000)
            model.fit(a, y[train])
            s = model.decision_function(b)
            scores[test] = s
            held = y[test]
            fold_p.append(float(stats.mannwhitneyu(s[held == 1], s[held == 0], alternative="greater").pvalue))
            w = np.abs(model.coef_[0])
            weights += w[:ref.shape[1]] + w[ref.shape[1]:]
    # decision_function scores of different folds' models share one scale (log-odds)
    auc = float(roc_auc_score(y, scores))
    features = []
    if feature_names is not None and weights.sum() > 0:
        share = weights / weights.sum()
        order = np.argsort(-share, kind="stable")[:top]
        features = [{"feature": str(feature_names[i]), "importance": float(share[i])} for i in order]
    return DomainClassifierResult(auc, min(1.0, k * min(fold_p)), tuple(fold_p), n, m,
                                  int((~keep_ref).sum()), int((~keep_cur).sum()), k, features)


def summaries_classifier(ref, cur, seed: int = 0) -> DomainClassifierResult | None:
    """The domain classifier of two embedding summaries' row samples (their coordinates on
    the reference's scaled principal axes, named ``axis_1``, ``axis_2``, ...); None when
    a side's sample has fewer than two rows (nothing to train on: the feature is untested)."""
    if ref.sample.shape[0] < 2 or cur.sample.shape[0] < 2:
        return None
    names = [f"axis_{i + 1}" for i in range(ref.sample.shape[1])]
    return domain_classifier_test(ref.sample, cur.sample, feature_names=names, seed=seed)
