"""Two-sample tests computed from summaries, and multiple-testing corrections.

Every p-value here is valid (or conservative) at any sample size, because the drift
verdict trusts it to keep small windows from raising false alarms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .numeric import Moments, NumericSummary


@dataclass(frozen=True)
class SignificanceResult:
    test: str
    statistic: float
    p_value: float


def ks_binned(ref: NumericSummary, cur: NumericSummary) -> SignificanceResult:
    """Two-sample Kolmogorov-Smirnov test on binned CDFs.

    With shared edges the CDFs are exact at every edge, and the statistic is the
    largest gap at the edges: ``D_binned <= D_exact <= D_binned + m``, where ``m`` is
    the largest bin mass of either side (about 1% with 100 reference-quantile bins).
    Because ``D_binned`` never exceeds the exact statistic, its p-value is
    conservative. With different edges the CDFs are interpolated at the union of
    both edge sets, and the error stays within the same bound.
    """
    if ref.edges == cur.edges:
        points = np.asarray(ref.edges)
    else:
        points = np.union1d(ref.knots()[0], cur.knots()[0])
    gap = np.abs(np.interp(points, *ref.knots()) - np.interp(points, *cur.knots()))
    d = float(gap.max()) if gap.size else 0.0
    n, m = ref.moments.count, cur.moments.count
    en = n * m / (n + m)
    # As scipy.stats.ks_2samp's asymptotic method: the one-sample distribution at
    # n*m/(n+m). Past 5,000 its limit (Kolmogorov's) is used: it is within 2% of the
    # finite-n value, on the conservative side, and 10-100x faster to evaluate.
    if en < _KOLMOGOROV_LIMIT:
        p = float(stats.kstwo.sf(d, max(1, round(en))))
    else:
        p = float(stats.kstwobign.sf(d * np.sqrt(en)))
    return SignificanceResult("ks", d, min(1.0, p))


_KOLMOGOROV_LIMIT = 5_000


def _contingency(ref_counts: np.ndarray, cur_counts: np.ndarray):
    """Pearson's statistic of the 2 x k table and what its p-value needs (None if degenerate)."""
    r = np.rint(ref_counts).astype(np.int64)
    c = np.rint(cur_counts).astype(np.int64)
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    if r.size < 2 or r.sum() == 0 or c.sum() == 0:
        return None
    col = r + c
    n_r, n_c = r.sum(), c.sum()
    e_r, e_c = col * n_r / (n_r + n_c), col * n_c / (n_r + n_c)
    stat = float((np.square(r - e_r) / e_r).sum() + (np.square(c - e_c) / e_c).sum())
    return stat, col, int(n_c), e_r, e_c


def chi2_two_sample(
    ref_counts: np.ndarray, cur_counts: np.ndarray, rng: np.random.Generator, n_permutations: int
) -> SignificanceResult:
    """Pearson's chi-square test of the 2 x k contingency table (reference vs current).

    When any expected count is below 5 the chi-square approximation is unreliable in
    the tail (one rare category seen once in a small window would look hugely
    significant), so the p-value comes from ``n_permutations`` random relabelings of
    the pooled rows instead: the exact permutation distribution, sampled.
    """
    table = _contingency(ref_counts, cur_counts)
    if table is None:
        return SignificanceResult("chi2", 0.0, 1.0)
    stat, col, n_c, e_r, e_c = table
    if min(e_r.min(), e_c.min()) >= 5:
        return SignificanceResult("chi2", stat, float(stats.chi2.sf(stat, col.size - 1)))
    return SignificanceResult("chi2_permutation", stat,
                              _permutation_p(stat, col, n_c, e_r, e_c, rng, n_permutations))


def chi2_per_document(ref_counts: np.ndarray, cur_counts: np.ndarray, mean_doc_length: float) -> SignificanceResult:
    """Chi-square test of token counts with each document counted once.

    Tokens of one document are not independent draws. Dividing the statistic by the
    mean document length treats each document as one observation, which is
    conservative whatever the correlation within documents.
    """
    table = _contingency(ref_counts, cur_counts)
    if table is None:
        return SignificanceResult("chi2_per_document", 0.0, 1.0)
    stat = table[0] / max(1.0, mean_doc_length)
    return SignificanceResult("chi2_per_document", stat, float(stats.chi2.sf(stat, table[1].size - 1)))


_STOP_AFTER = 20  # exceedances before a sequential permutation test stops
_BATCH = 1000


def sequential_p(stat: float, simulate, n_permutations: int, batch: int = _BATCH) -> float:
    """Sequential Monte Carlo p-value (Besag and Clifford, 1991) of ``stat``.

    ``simulate(size)`` returns ``size`` statistics under the null. They are drawn in
    batches and stop at the 20th at least as large as the observed one, giving p = 20 / L
    after L draws; otherwise all ``n_permutations`` are drawn and p = (1 + exceedances)
    / (1 + n_permutations). Both are valid p-values; stopping early only saves time on
    unremarkable statistics.
    """
    done = exceed = 0
    while done < n_permutations:
        size = min(batch, n_permutations - done)
        hits = np.flatnonzero(simulate(size) >= stat * (1 - 1e-12))
        if exceed + hits.size >= _STOP_AFTER:
            return float(_STOP_AFTER / (done + hits[_STOP_AFTER - exceed - 1] + 1))
        exceed += hits.size
        done += size
    return float((1 + exceed) / (1 + n_permutations))


def _permutation_p(stat, col, n_c, e_r, e_c, rng, n_permutations) -> float:
    """Pearson's statistic's p-value over random relabelings of the pooled rows (see
    :func:`sequential_p`)."""
    def simulate(size):
        sim_c = rng.multivariate_hypergeometric(col, n_c, size=size, method="marginals")
        return (np.square(col - sim_c - e_r) / e_r).sum(axis=1) + (np.square(sim_c - e_c) / e_c).sum(axis=1)

    return sequential_p(stat, simulate, n_permutations)


def welch_t(ref: Moments, cur: Moments) -> SignificanceResult | None:
    """Welch's unequal-variance t-test from moments; None with fewer than 2 values a side.

    Computed in units of the standard error, so magnitudes near the float limit
    give a finite statistic or an infinite one with p = 0, never NaN.
    """
    if ref.count < 2 or cur.count < 2:
        return None
    er, ec = ref.std / math.sqrt(ref.count), cur.std / math.sqrt(cur.count)
    se = math.hypot(er, ec)
    if se == 0:
        same = ref.mean == cur.mean
        return SignificanceResult("welch_t", 0.0 if same else float("inf"), 1.0 if same else 0.0)
    t = ref.mean / se - cur.mean / se  # scipy's sign: reference minus current
    wr, wc = (er / se) ** 2, (ec / se) ** 2
    dof = 1.0 / (wr * wr / (ref.count - 1) + wc * wc / (cur.count - 1))
    p = 0.0 if math.isinf(t) else float(2 * stats.t.sf(abs(t), dof))
    return SignificanceResult("welch_t", t, min(1.0, p))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (controls the family-wise error rate).

    >>> holm(np.array([0.01, 0.04, 0.03])).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate)."""
    p = np.asarray(p_values, dtype=float)
    return stats.false_discovery_control(p, method="bh") if p.size else p


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}
