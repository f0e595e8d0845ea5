"""Binning on reference quantile edges: fast bin lookup, exact percentiles, CDFs.

Edges are sorted unique floats ``e_0 < ... < e_{E-1}``. Bin ``i`` holds the values
``x`` with ``e_{i-1} <= x < e_i``, so there are ``E + 1`` bins: bin 0 lies below the
reference range and bin ``E`` above it. Edges come from the reference, so a window's
counts line up with the reference's bin for bin and two windows' counts add up.
"""

from __future__ import annotations

import numpy as np

N_QUANTILE_BINS = 100
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)

# Above this many values a lookup table beats np.searchsorted, which costs ~60 ns a
# value on unsorted input because every comparison is a mispredicted branch.
_LUT_MIN_SIZE = 1 << 16
_LUT_CELLS = 1 << 14


def quantile_edges(values: np.ndarray, n_bins: int = N_QUANTILE_BINS) -> np.ndarray:
    """Edges at the 0, 1/n_bins, ..., 1 quantiles of finite ``values``, deduplicated.

    The top edge is nudged above the maximum so that the reference's largest value
    falls inside the range rather than in the bin above it.

    >>> quantile_edges(np.array([1.0, 2.0, 3.0, 4.0]), n_bins=2).tolist()[:2]
    [1.0, 2.5]
    """
    if values.size == 0:
        raise ValueError("cannot take quantile edges of an empty array")
    levels = np.linspace(0.0, 1.0, n_bins + 1)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        edges = np.quantile(values, levels)
    if not np.isfinite(edges).all():  # interpolating between +-1.8e308 overflows: interpolate halved
        edges = np.quantile(values / 2.0, levels) * 2.0
    if edges[-1] < np.finfo(np.float64).max:  # at the float maximum there is no room above
        edges[-1] = np.nextafter(edges[-1], np.inf)
    return np.unique(edges)


def bin_indices(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each finite value: equal to ``np.searchsorted(edges, x, side="right")``.

    Large inputs go through a lookup table of uniform cells over the edge range: a
    cell whose neighbourhood holds no edge maps to one bin; values in the few cells
    near an edge, and values above the range, fall back to the binary search.
    Results are identical to the binary search (the tests compare them on
    adversarial inputs).
    """
    if x.size < _LUT_MIN_SIZE or edges.size < 2:
        return np.searchsorted(edges, x, side="right")
    lo, hi = float(edges[0]), float(edges[-1])
    scale = _LUT_CELLS / (hi - lo)
    if not np.isfinite(scale) or scale <= 0:
        return np.searchsorted(edges, x, side="right")
    # Table slot k + 1 describes cell k = [lo + k / scale, lo + (k + 1) / scale);
    # slot 0 is everything below lo and the last slot everything from hi up.
    bounds = lo + np.arange(_LUT_CELLS + 1) / scale
    first = np.searchsorted(edges, bounds[:-1], side="right")
    unsure = first != np.searchsorted(edges, bounds[1:], side="right")
    # Rounding can put a value one cell off, so a cell next to an edge is unsure too.
    unsure[1:] |= unsure[:-1].copy()
    unsure[:-1] |= unsure[1:].copy()
    # intp, because np.bincount would otherwise cast the whole result once per call.
    table = np.concatenate([[0], first, [edges.size]]).astype(np.intp)
    # Below lo is exact (x - lo < 0 exactly when x < lo); cell 0 holds lo itself and
    # the top slot is checked, because rounding near hi can go either way.
    unsure = np.concatenate([[False], unsure, [True]])
    unsure[1] = unsure[-2] = True

    cell = (x - lo) * scale
    np.clip(cell, -1, _LUT_CELLS, out=cell)
    slot = cell.astype(np.int32)  # truncation: (-1, 0) lands in cell 0, which is unsure
    del cell
    slot += 1
    out = table[slot]
    slow = np.flatnonzero(unsure[slot])
    if slow.size:
        out[slow] = np.searchsorted(edges, x[slow], side="right")
    return out


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    # numpy's own interpolation for method="linear", so the results match bit for bit.
    with np.errstate(over="ignore", invalid="ignore"):
        diff = b - a
        out = np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
    # b - a overflows between values near -+1.8e308: weigh the ends instead
    return np.where(np.isfinite(out), out, (1 - t) * a + t * b)


def exact_percentiles(
    x: np.ndarray, idx: np.ndarray, counts: np.ndarray, q=PERCENTILES
) -> tuple[float, ...]:
    """``np.percentile(x, q)`` (linear), sorting only the bins that hold the needed ranks.

    ``idx`` is the bin of each value and ``counts`` the bin counts. The bin counts say
    which bins contain the order statistics a percentile needs, so only those values
    (a few percent of ``x``) are gathered and sorted.
    """
    n = x.size
    quantiles = np.asarray(q, dtype=float) / 100.0
    virtual = n * quantiles + (1 - quantiles) - 1  # numpy's formula for "linear"
    lo = np.floor(virtual).astype(np.int64)
    frac = virtual - lo
    lo = np.clip(lo, 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    cum = np.cumsum(counts)
    ranks = np.unique(np.concatenate([lo, hi]))
    bins = np.unique(np.searchsorted(cum, ranks, side="right"))
    wanted = np.zeros(counts.size, dtype=bool)
    wanted[bins] = True
    picked = np.sort(x[wanted[idx]])
    # Picked values are sorted by bin, because bins are value ranges.
    start_in_picked = np.cumsum(np.where(wanted, counts, 0)) - np.where(wanted, counts, 0)
    start_in_all = cum - counts

    def order_stat(r: np.ndarray) -> np.ndarray:
        b = np.searchsorted(cum, r, side="right")
        return picked[start_in_picked[b] + (r - start_in_all[b])]

    values = _lerp(order_stat(lo), order_stat(hi), frac)
    return tuple(float(v) for v in values)


def cdf_knots(
    edges: np.ndarray, counts: np.ndarray, vmin: float, vmax: float
) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the piecewise-linear CDF ``P(X < t)`` of a binned sample.

    The CDF is exact at every edge; between edges the bin's mass is spread evenly,
    and the outer bins span from the sample minimum and to the sample maximum.
    """
    total = counts.sum()
    cum = np.cumsum(counts[:-1]) / total  # P(X < e_i) for each edge
    lo = min(vmin, edges[0]) if edges.size else vmin  # no edges: a reference without values
    hi = max(vmax, edges[-1]) if edges.size else vmax
    xs = np.concatenate([[lo], edges, [hi]])
    ys = np.concatenate([[0.0], cum, [1.0]])
    return xs, ys


def interpolated_quantiles(xs: np.ndarray, ys: np.ndarray, q=PERCENTILES) -> tuple[float, ...]:
    """Percentiles read off CDF knots; the error is at most the width of the bin read."""
    levels = np.asarray(q, dtype=float) / 100.0
    # The segment whose rise crosses the level: ys[j] < level <= ys[j + 1]. Empty
    # bins are flat segments and are skipped by construction.
    j = np.clip(np.searchsorted(ys, levels, side="left") - 1, 0, ys.size - 2)
    rise = ys[j + 1] - ys[j]
    t = np.divide(levels - ys[j], rise, out=np.zeros_like(levels), where=rise > 0)
    values = _lerp(xs[j], xs[j + 1], np.clip(t, 0.0, 1.0))
    return tuple(float(v) for v in values)
