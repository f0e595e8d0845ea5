"""Sampling noise in effect sizes, and the correction the verdict applies to it.

With no shift at all, a window still shows a positive effect: the plug-in distance
between two samples of one distribution is biased upward by about 1/sqrt(n). At 30
rows that bias alone exceeds the thresholds, which is why tools that compare raw
distances with a threshold flag most unchanged features in small windows. Each
method's expected value under no shift (its noise floor, below) is removed before
the effect is compared with the threshold. Divergences subtract it; distances
subtract it in quadrature, ``sqrt(raw^2 - floor^2)``, because noise and shift add
up in squares (the squared JS distance, for one, is a divergence). With no shift the
corrected value is near zero; for a shift well above the floor it is within
``floor^2 / (2 raw)`` of the raw value.

The floors come from the chi-square approximation of the divergences, E[sum (p-q)^2 /
p] = (k - 1) (1/n + 1/m) for k cells, and from the normal approximation of empirical
CDFs for the Wasserstein and Kolmogorov-Smirnov distances. The top-k token turnover
has no closed form: its floor is simulated (:func:`.text_effects.turnover_floor`), and
being a share of a set that turned over, it is netted out as ``(raw - floor) / (1 - floor)``.
"""

from __future__ import annotations

import math

import numpy as np

from .domain_classifier import auc_noise_floor
from .embedding import mean_distance
from .methods import FeaturePair, wasserstein_scale
from .text_effects import turnover_floor

KOLMOGOROV_MEAN = math.sqrt(math.pi / 2) * math.log(2)  # E[sup |B(t)|] of a Brownian bridge
DIVERGENCES = frozenset({"kl_div", "psi"})
# A share of a set that turned over: noise turns over the floor's share of what the
# shift left in place, raw = shift + floor (1 - shift), so shift = (raw - floor) / (1 - floor).
TURNOVERS = frozenset({"token_topk"})


def _inverse_sizes(pair: FeaturePair) -> float:
    r, c = pair.counts
    n, m = float(r.sum()), float(c.sum())
    return 1 / n + 1 / m if n > 0 and m > 0 else 0.0


def _chi2_floor(pair: FeaturePair) -> float:
    r, c = pair.counts
    cells = int(np.count_nonzero((r + c) > 0))
    return max(cells - 1, 0) * _inverse_sizes(pair)


def _numeric_sizes(pair: FeaturePair) -> float:
    ref, cur = pair.numeric()
    return 1 / ref.moments.count + 1 / cur.moments.count


def _wasserstein_floor(pair: FeaturePair) -> float:
    """E[W1] of two samples of the reference distribution, in the units of the distance."""
    ref = pair.numeric()[0]
    scale = wasserstein_scale(pair)
    if scale == 0:
        return 0.0
    xs, ys = ref.knots()
    # integral of sqrt(F (1 - F)) over the piecewise-linear reference CDF
    t = np.linspace(0.0, 1.0, 9)[:, None]
    f = ys[:-1] + t * np.diff(ys)
    spread = np.sqrt(np.clip(f * (1 - f), 0, None)).mean(axis=0) @ np.diff(xs)
    return math.sqrt(2 / math.pi * _numeric_sizes(pair)) * float(spread) / scale


def _channel_floor(pair: FeaturePair) -> float:
    ref, cur = pair.ref, pair.cur
    scale = ref.pixels.std or cur.pixels.std
    r, c = ref.per_image.moments, cur.per_image.moments
    if scale == 0 or r.count == 0 or c.count == 0:
        return 0.0
    return math.sqrt(2 / math.pi * (r.std ** 2 / r.count + c.std ** 2 / c.count)) / scale


FLOORS = {
    "jensenshannon": lambda pair: math.sqrt(_chi2_floor(pair) / (8 * math.log(2))),
    "chisquare": lambda pair: math.sqrt(_chi2_floor(pair)),
    "kl_div": lambda pair: _chi2_floor(pair) / (2 * math.log(2)),
    "psi": _chi2_floor,
    "ks": lambda pair: KOLMOGOROV_MEAN * math.sqrt(_numeric_sizes(pair)),
    "wasserstein": _wasserstein_floor,
    "channel_mean": _channel_floor,
    "mean_embedding": lambda pair: mean_distance(pair.ref, pair.cur).floor,
    # E|2 AUC - 1| of the cross-fitted classifier on the rows it sees (measured spread, see the module)
    "domain_classifier": lambda pair: auc_noise_floor(pair.ref.sample.shape[0], pair.cur.sample.shape[0]),
    "token_topk": lambda pair: turnover_floor(pair.ref, pair.cur),  # simulated: no closed form
}


def noise_floor(method: str, pair: FeaturePair) -> float:
    """The effect size a method shows on average when nothing moved."""
    return FLOORS[method](pair)


def corrected(method: str, raw: float, floor: float) -> float:
    """The effect size with the noise floor removed (never below zero)."""
    if method in DIVERGENCES:
        return max(0.0, raw - floor)
    if method in TURNOVERS:
        return max(0.0, (raw - floor) / (1.0 - floor)) if floor < 1.0 else 0.0
    if not raw > floor:
        return 0.0
    return raw * math.sqrt(1.0 - (floor / raw) ** 2)  # sqrt(raw^2 - floor^2), without squaring raw
