"""Drift effect sizes, registered by name with their default thresholds.

Each method measures how far a feature moved, in its own units. Its two thresholds
grade severity the way the seed grades the Jensen-Shannon distance (ok < 0.1 <= warn
<= 0.2 < alert): they are the method's values for the same shift, namely a Gaussian
mean shift of 0.236 and 0.478 standard deviations, which give a JS distance of
exactly 0.1 and 0.2 (``test_thresholds.py`` recomputes them by integration).
Token top-k turnover has no such analogue and uses the seed's own 50% overlap rule.
The embedding distance is, for one feature, exactly that mean shift in standard
deviations, and takes the same thresholds. A domain classifier's ``2 AUC - 1`` takes
what the best classifier reaches on those shifts, ``2 Phi(d / sqrt 2) - 1`` (0.133
and 0.265; see :mod:`.domain_classifier`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
from scipy import stats

from .categorical import CategoricalSummary, TokenSummary
from .domain_classifier import shift_effect, summaries_classifier
from .embedding import mean_distance
from .numeric import NumericSummary
from .text_effects import top_turnover
from .timestamps import time_cells
from .stattests import ks_binned

COARSE_BINS = 10  # distances on numeric features use reference deciles, as PSI does
TOP_K = 100  # token overlap compares the top 100 informative tokens (the seed's top-100)
MIN_TOKEN_COUNT = 5  # rarer tokens pool into one cell so the chi-square test holds
BOUNDED_SCALE_FLOOR = 0.1  # a bounded score's scale is at least this share of its range


def decile_grid(ref: NumericSummary, n_bins: int = COARSE_BINS) -> np.ndarray:
    """Reference edges closest to its ``1/n_bins`` quantiles (a subset of its edges)."""
    edges = np.asarray(ref.edges)
    if edges.size == 0:
        return edges
    at_edges = ref.knots()[1][1:-1]
    pick = np.searchsorted(at_edges, np.arange(1, n_bins) / n_bins)
    return edges[np.unique(np.clip(pick, 0, edges.size - 1))]


def grid_counts(summary: NumericSummary, grid: np.ndarray) -> np.ndarray:
    """Finite values of ``summary`` per interval of ``grid`` (exact at shared edges)."""
    cdf = np.interp(grid, *summary.knots())
    return np.diff(np.concatenate([[0.0], cdf, [1.0]])) * summary.moments.count


@dataclass
class FeaturePair:
    """A feature's reference and current summaries, aligned cell by cell on demand."""

    name: str
    kind: str
    ref: object
    cur: object

    def numeric(self) -> tuple[NumericSummary, NumericSummary]:
        if self.kind == "channel":
            return self.ref.per_image, self.cur.per_image
        return self.ref, self.cur

    @cached_property
    def domain_classifier(self):
        """The domain classifier of an embedding's two row samples, fitted once for both its
        effect size and its test (None with fewer than 2 sampled rows a side)."""
        return summaries_classifier(self.ref, self.cur)

    @cached_property
    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Reference and current counts over the same cells."""
        if self.kind in ("numeric", "channel"):
            ref, cur = self.numeric()
            grid = decile_grid(ref)
            return grid_counts(ref, grid), grid_counts(cur, grid)
        if self.kind == "categorical":
            return _label_counts(self.ref, self.cur)
        if self.kind == "datetime":
            return time_cells(self.ref, self.cur)[:2]
        return _token_counts(self.ref, self.cur)


def _label_counts(ref: CategoricalSummary, cur: CategoricalSummary):
    rc, cc = ref.as_counter(), cur.as_counter()
    labels = list(rc)
    unseen = sum(v for label, v in cc.items() if label not in rc)
    if ref.other:
        # The reference's tail is unknown, so labels it did not keep share its cell.
        r = [rc[label] for label in labels] + [ref.other]
        c = [cc.get(label, 0) for label in labels] + [cur.other + unseen]
    else:
        new = [label for label in cc if label not in rc]
        r = [rc[label] for label in labels] + [0] * len(new) + [0]
        c = [cc.get(label, 0) for label in labels] + [cc[label] for label in new] + [cur.other]
    return np.asarray(r, dtype=float), np.asarray(c, dtype=float)


def _token_counts(ref: TokenSummary, cur: TokenSummary):
    rc, cc = ref.as_counter(), cur.as_counter()
    tokens = [t for t in {**rc, **cc} if rc.get(t, 0) + cc.get(t, 0) >= MIN_TOKEN_COUNT]
    r = [rc.get(t, 0) for t in tokens]
    c = [cc.get(t, 0) for t in tokens]
    r.append(ref.n_tokens - sum(r))
    c.append(cur.n_tokens - sum(c))
    return np.asarray(r, dtype=float), np.asarray(c, dtype=float)


def _shares(counts: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    counts = counts + smoothing
    total = counts.sum()
    return counts / total if total > 0 else counts


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance with base-2 logarithms, in [0, 1] (0 for equal shares)."""
    p, q = _shares(p), _shares(q)
    m = (p + q) / 2
    div = 0.0
    for x in (p, q):
        pos = x > 0
        div += 0.5 * float(np.sum(x[pos] * np.log2(x[pos] / m[pos])))
    return float(np.sqrt(min(1.0, max(0.0, div))))


def jensenshannon(pair: FeaturePair) -> float:
    return js_distance(*pair.counts)


def kl_div(pair: FeaturePair) -> float:
    """KL(reference || current) in bits, each cell smoothed by +0.5 (Jeffreys)."""
    r, c = pair.counts
    p, q = _shares(r, 0.5), _shares(c, 0.5)
    return float(np.sum(p * np.log2(p / q)))


def psi(pair: FeaturePair) -> float:
    """Population stability index, natural log, each cell smoothed by +0.5."""
    r, c = pair.counts
    p, q = _shares(r, 0.5), _shares(c, 0.5)
    return float(np.sum((q - p) * np.log(q / p)))


def chisquare_w(pair: FeaturePair) -> float:
    """Chi-square distance of the shares on their midpoint: sqrt(sum (p-q)^2 / ((p+q)/2))."""
    p, q = (_shares(x) for x in pair.counts)
    mid = (p + q) / 2
    pos = mid > 0
    return float(np.sqrt(np.sum(np.square(p[pos] - q[pos]) / mid[pos])))


def _scale(ref_std: float, cur_std: float) -> float:
    return ref_std if ref_std > 0 else cur_std


def wasserstein_scale(pair: FeaturePair) -> float:
    """The unit of a numeric feature's Wasserstein distance (and of its noise floor).

    The reference's standard deviation (the current one for a constant reference).
    For a bounded score (a summary with ``bounds``, such as a confidence in [0, 1])
    it is at least a tenth of the range: a confident model's reference confidences
    have almost no spread, and a shift of 0.02 would otherwise read as 100 standard
    deviations.
    """
    ref, cur = pair.numeric()
    scale = _scale(ref.moments.std, cur.moments.std)
    bounds = ref.bounds or cur.bounds  # a reference stored before bounds existed takes the window's
    if bounds is not None:
        scale = max(scale, BOUNDED_SCALE_FLOOR * (bounds[1] - bounds[0]))
    return scale


def wasserstein_normed(pair: FeaturePair) -> float:
    """Wasserstein-1 distance in units of :func:`wasserstein_scale`.

    Each side is its bins' mass placed at the bins' means, which is within
    ``sum_i p_i * spread_i`` of the exact distance (the mean absolute deviation
    inside each bin). A constant reference is scaled by the current spread; two
    different constants give 1.0.
    """
    ref, cur = pair.numeric()
    u, uw = ref.centroids()
    v, vw = cur.centroids()
    dist = float(stats.wasserstein_distance(u, v, uw, vw))
    scale = wasserstein_scale(pair)
    if scale == 0:
        return 0.0 if dist == 0 else 1.0
    return dist / scale


def ks_statistic(pair: FeaturePair) -> float:
    return ks_binned(*pair.numeric()).statistic


def token_turnover(pair: FeaturePair) -> float:
    """1 - overlap of the top-k informative token sets (no stop words or punctuation;
    k = 100, or fewer if either side has fewer; see :mod:`.text_effects`)."""
    return top_turnover(pair.ref, pair.cur, TOP_K)


def channel_mean_distance(pair: FeaturePair) -> float:
    """|mean_cur - mean_ref| of the channel's pixels, in reference pixel standard deviations."""
    ref, cur = pair.ref.pixels, pair.cur.pixels
    scale = _scale(ref.std, cur.std)
    diff = abs(cur.mean - ref.mean)
    if scale == 0:
        return 0.0 if diff == 0 else 1.0
    return diff / scale


def embedding_distance(pair: FeaturePair) -> float:
    """Mahalanobis distance between the mean test features of the two sides (see :mod:`.embedding`)."""
    return mean_distance(pair.ref, pair.cur).distance


def domain_classifier_effect(pair: FeaturePair) -> float:
    """``2 AUC - 1`` of a cross-fitted classifier telling current rows from reference rows
    (see :mod:`.domain_classifier`); 0 when a side has too few rows to train one."""
    result = pair.domain_classifier
    return 0.0 if result is None else result.effect


@dataclass(frozen=True)
class DriftMethod:
    name: str
    kinds: frozenset[str]
    threshold: float  # drifted (warn) at or above, when also significant
    alert: float  # alert above
    effect: Callable[[FeaturePair], float]
    description: str


def _method(name, kinds, threshold, alert, effect, description):
    return name, DriftMethod(name, frozenset(kinds), threshold, alert, effect, description)


_HISTOGRAMS = ("numeric", "categorical", "tokens", "channel", "datetime")
METHODS: dict[str, DriftMethod] = dict([
    _method("jensenshannon", _HISTOGRAMS, 0.1, 0.2, jensenshannon,
            "Jensen-Shannon distance (base 2, 0..1)"),
    _method("kl_div", _HISTOGRAMS, 0.040, 0.165, kl_div, "KL divergence reference||current, bits"),
    _method("psi", _HISTOGRAMS, 0.056, 0.228, psi, "population stability index"),
    _method("chisquare", _HISTOGRAMS, 0.235, 0.465, chisquare_w, "chi-square distance of shares"),
    _method("ks", ("numeric", "channel"), 0.094, 0.189, ks_statistic, "Kolmogorov-Smirnov D"),
    _method("wasserstein", ("numeric", "channel"), 0.236, 0.478, wasserstein_normed,
            "Wasserstein-1 in reference standard deviations (bounded scores: at least 0.1 of their range)"),
    _method("token_topk", ("tokens",), 0.3, 0.5, token_turnover, "1 - overlap of the top-100 tokens"),
    _method("channel_mean", ("channel",), 0.236, 0.478, channel_mean_distance,
            "channel mean shift in reference pixel standard deviations"),
    _method("mean_embedding", ("embedding",), 0.236, 0.478, embedding_distance,
            "distance between mean embedding features, in pooled standard deviations"),
    _method("domain_classifier", ("embedding",), shift_effect(0.236), shift_effect(0.478),
            domain_classifier_effect, "2 AUC - 1 of a cross-fitted classifier telling current from reference rows"),
])

DEFAULT_METHODS = {"numeric": "wasserstein", "categorical": "jensenshannon",
                   "tokens": "jensenshannon", "channel": "channel_mean", "datetime": "jensenshannon",
                   "embedding": "mean_embedding"}
