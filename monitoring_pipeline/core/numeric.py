"""Summaries of numbers: moments, binned counts on reference edges, fixed histograms.

Every summary here merges exactly: counts and sums add, and moments combine with
Chan et al.'s pairwise formulas (exact up to floating-point rounding). Percentiles
are exact for a summary built from data; after a merge they are read off the merged
histogram, which is within one bin width of the exact value (with the default 100
reference-quantile bins, within about one percent of the reference's mass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from .histogram import (
    bin_indices,
    cdf_knots,
    exact_percentiles,
    interpolated_quantiles,
    quantile_edges,
)


_SCALED_ABOVE = 2.0 ** 480  # squares of larger values (times a count) can overflow float64


def _scale_for(*values: float) -> float:
    """1.0 for ordinary magnitudes, else the power of two at or above the largest one."""
    big = max((abs(v) for v in values if v is not None), default=0.0)
    return 1.0 if big < _SCALED_ABOVE else 2.0 ** min(1023, math.ceil(math.log2(big)))


@dataclass(frozen=True)
class Moments:
    """Count, mean, sum of squared deviations, min and max of finite values.

    Magnitudes near the float limit (up to +-1.8e308) stay finite: when a value
    reaches 2^480, the data is divided by a power of two ``scale`` (exact in binary)
    before it is summed, and ``m2`` holds the sum of squared deviations in those
    units (the true one is ``m2 * scale**2``, which may exceed float range while its
    square root, the standard deviation, does not). ``mean``, ``min`` and ``max``
    are always in the data's own units.
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float | None = None
    max: float | None = None
    scale: float = 1.0

    @classmethod
    def of(cls, x: np.ndarray) -> Moments:
        if x.size == 0:
            return cls()
        lo, hi = float(x.min()), float(x.max())
        scale = _scale_for(lo, hi)
        y = x / scale if scale != 1.0 else x
        mean = float(y.mean())
        dev = y - mean
        return cls(int(x.size), mean * scale, float(np.dot(dev, dev)), lo, hi, scale)

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0.0 for fewer than two values."""
        return math.sqrt(self.m2 / (self.count - 1)) * self.scale if self.count > 1 else 0.0

    def merge(self, other: Moments) -> Moments:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        s = max(self.scale, other.scale)
        n = self.count + other.count
        a, b = self.mean / s, other.mean / s
        delta = b - a
        m2 = (self.m2 * (self.scale / s) ** 2 + other.m2 * (other.scale / s) ** 2
              + delta * delta * self.count * other.count / n)
        mean = (a + delta * other.count / n) * s
        return Moments(n, mean, m2, min(self.min, other.min), max(self.max, other.max), s)

    def to_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean, "m2": self.m2,
                "min": self.min, "max": self.max, "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict) -> Moments:
        return cls(d["count"], d["mean"], d["m2"], d["min"], d["max"], d.get("scale", 1.0))


@dataclass(frozen=True)
class NumericSummary:
    """A numeric feature: counts and value sums over reference edges, plus moments.

    ``counts[i]`` and ``sums[i]`` cover bin ``i`` of :mod:`.histogram`'s convention
    (bin 0 below the reference range, the last bin above it). NaN and None are
    ``n_missing``; +/-inf are ``n_infinite``; both are kept out of every statistic.
    ``sums`` are in units of ``moments.scale`` (1.0 unless values reach 2^480).
    ``bounds`` is the range the values are known to lie in, e.g. (0.0, 1.0) for
    confidences and class probabilities, or None for an unbounded quantity; distances
    in standard deviations then have a floor on their scale (see ``core.methods``).
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    sums: tuple[float, ...]
    moments: Moments
    n_missing: int
    n_infinite: int
    percentiles: tuple[float, ...] | None
    percentiles_exact: bool = True
    bounds: tuple[float, float] | None = None
    kind: ClassVar[str] = "numeric"

    @classmethod
    def from_array(cls, values: np.ndarray, edges: tuple[float, ...] | None = None, *,
                   bounds: tuple[float, float] | None = None) -> NumericSummary:
        """Summarize float64 ``values``; ``edges`` of None makes the data its own reference.

        ``bounds`` declares the range the values lie in (kept, not checked here: the
        loader that knows the values are scores checks them).
        """
        if bounds is not None:
            lo, hi = (float(b) for b in bounds)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"bounds must be two finite numbers, low < high; got {bounds!r}")
            bounds = (lo, hi)
        x = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(x)
        n_finite = int(np.count_nonzero(finite))
        n_missing = n_infinite = 0
        if n_finite < x.size:
            n_missing = int(np.count_nonzero(np.isnan(x)))
            n_infinite = x.size - n_finite - n_missing
            x = x[finite]
        if edges is None:
            edge_arr = quantile_edges(x) if x.size else np.empty(0)
        else:
            edge_arr = np.asarray(edges, dtype=np.float64)
        n_bins = edge_arr.size + 1
        if x.size == 0:
            return cls(tuple(edge_arr.tolist()), (0,) * n_bins, (0.0,) * n_bins, Moments(),
                       n_missing, n_infinite, None, bounds=bounds)
        idx = bin_indices(x, edge_arr)
        counts = np.bincount(idx, minlength=n_bins)
        moments = Moments.of(x)
        sums = np.bincount(idx, weights=x if moments.scale == 1.0 else x / moments.scale, minlength=n_bins)
        return cls(
            edges=tuple(edge_arr.tolist()),
            counts=tuple(counts.tolist()),
            sums=tuple(sums.tolist()),
            moments=moments,
            n_missing=n_missing,
            n_infinite=n_infinite,
            percentiles=exact_percentiles(x, idx, counts),
            bounds=bounds,
        )

    @property
    def n_rows(self) -> int:
        return self.moments.count + self.n_missing + self.n_infinite

    @property
    def missing_share(self) -> float:
        """Share of rows that are NaN or None (infinite values are counted apart)."""
        return self.n_missing / self.n_rows if self.n_rows else 0.0

    @property
    def infinite_share(self) -> float:
        """Share of rows that are +/-inf."""
        return self.n_infinite / self.n_rows if self.n_rows else 0.0

    @property
    def out_of_range(self) -> int:
        """Finite values below or above the reference range the edges came from."""
        return self.counts[0] + self.counts[-1] if self.edges else 0

    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """CDF knots (see :func:`.histogram.cdf_knots`); needs at least one finite value."""
        return cdf_knots(np.asarray(self.edges), np.asarray(self.counts),
                         self.moments.min, self.moments.max)

    def centroids(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean value and count of every non-empty bin."""
        counts = np.asarray(self.counts, dtype=np.float64)
        full = counts > 0
        return np.asarray(self.sums)[full] / counts[full] * self.moments.scale, counts[full]

    def merge(self, other: NumericSummary) -> NumericSummary:
        a, b = self, other
        if a.edges != b.edges:
            # A side without finite values carries no bin information of its own.
            if b.moments.count == 0:
                b = replace(b, edges=a.edges, counts=(0,) * len(a.counts), sums=(0.0,) * len(a.counts))
            elif a.moments.count == 0:
                a = replace(a, edges=b.edges, counts=(0,) * len(b.counts), sums=(0.0,) * len(b.counts))
            else:
                raise ValueError(
                    "cannot merge numeric summaries binned on different edges; "
                    "profile both shards against the same reference"
                )
        moments = a.moments.merge(b.moments)
        ka, kb = a.moments.scale / moments.scale, b.moments.scale / moments.scale
        merged = NumericSummary(
            edges=a.edges,
            counts=tuple(x + y for x, y in zip(a.counts, b.counts)),
            sums=tuple(x * ka + y * kb for x, y in zip(a.sums, b.sums)),
            moments=moments,
            n_missing=a.n_missing + b.n_missing,
            n_infinite=a.n_infinite + b.n_infinite,
            percentiles=None,
            percentiles_exact=False,
            # values known to lie in one range still do; a summary without bounds
            # (or with other ones) makes the union's range unknown
            bounds=a.bounds if a.bounds == b.bounds else None,
        )
        if moments.count == 0:
            return merged
        return replace(merged, percentiles=interpolated_quantiles(*merged.knots()))

    def with_missing(self, n: int) -> NumericSummary:
        """The same summary with ``n`` more missing rows (a shard lacking the column)."""
        return replace(self, n_missing=self.n_missing + n)

    def to_dict(self) -> dict:
        return {
            "type": self.kind, "edges": list(self.edges), "counts": list(self.counts),
            "sums": list(self.sums), "moments": self.moments.to_dict(),
            "n_missing": self.n_missing, "n_infinite": self.n_infinite,
            "percentiles": None if self.percentiles is None else list(self.percentiles),
            "percentiles_exact": self.percentiles_exact,
            "bounds": None if self.bounds is None else list(self.bounds),
        }

    @classmethod
    def from_dict(cls, d: dict) -> NumericSummary:
        return cls(
            tuple(d["edges"]), tuple(d["counts"]), tuple(d["sums"]),
            Moments.from_dict(d["moments"]), d["n_missing"], d["n_infinite"],
            None if d["percentiles"] is None else tuple(d["percentiles"]),
            d["percentiles_exact"],
            None if d.get("bounds") is None else tuple(d["bounds"]),  # profiles stored before bounds: none
        )


@dataclass(frozen=True)
class FixedHistogram:
    """Counts over fixed edges, for display (e.g. the 5-bin brightness histogram)."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    @classmethod
    def equal_width(cls, x: np.ndarray, n_bins: int, edges: tuple[float, ...] | None = None):
        """``n_bins`` equal-width bins over the range of ``x`` unless ``edges`` are given.

        The outer bins are open, so values outside a reference's range are counted
        in the first or last bin rather than dropped as ``np.histogram`` would.
        """
        x = x[np.isfinite(x)]
        if edges is None:
            if x.size == 0:
                edges = ()
            else:
                inner = np.linspace(x.min(), x.max(), n_bins + 1)[1:-1]
                edges = tuple(np.unique(inner).tolist())
        counts = np.bincount(np.searchsorted(np.asarray(edges), x, side="right"),
                             minlength=len(edges) + 1)
        return cls(tuple(edges), tuple(counts.tolist()))

    def merge(self, other: FixedHistogram) -> FixedHistogram:
        if self.edges != other.edges:
            raise ValueError("cannot merge histograms with different edges")
        return FixedHistogram(self.edges, tuple(a + b for a, b in zip(self.counts, other.counts)))

    def to_dict(self) -> dict:
        return {"edges": list(self.edges), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, d: dict) -> FixedHistogram:
        return cls(tuple(d["edges"]), tuple(d["counts"]))


@dataclass(frozen=True)
class ChannelSummary:
    """One image channel: the distribution of per-image means, and every pixel's moments."""

    per_image: NumericSummary
    pixels: Moments
    kind: ClassVar[str] = "channel"

    @property
    def n_rows(self) -> int:
        return self.per_image.n_rows

    @property
    def missing_share(self) -> float:
        return self.per_image.missing_share

    def merge(self, other: ChannelSummary) -> ChannelSummary:
        return ChannelSummary(self.per_image.merge(other.per_image), self.pixels.merge(other.pixels))

    def with_missing(self, n: int) -> ChannelSummary:
        return replace(self, per_image=self.per_image.with_missing(n))

    def to_dict(self) -> dict:
        return {"type": self.kind, "per_image": self.per_image.to_dict(),
                "pixels": self.pixels.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> ChannelSummary:
        return cls(NumericSummary.from_dict(d["per_image"]), Moments.from_dict(d["pixels"]))
