import numpy as np
import pytest

from monitoring_pipeline.core.histogram import (
    _LUT_MIN_SIZE,
    PERCENTILES,
    bin_indices,
    cdf_knots,
    exact_percentiles,
    interpolated_quantiles,
    quantile_edges,
)


def _adversarial(rng, edges, n):
    """Values exactly on edges, one ulp either side, far outside, and ordinary ones."""
    on = rng.choice(edges, n // 4)
    return np.concatenate([
        on, np.nextafter(on, np.inf), np.nextafter(on, -np.inf),
        rng.uniform(edges[0] - 1, edges[-1] + 1, n // 8),
        np.array([-1e300, 1e300, edges[0], edges[-1]]),
        rng.uniform(edges[0], edges[-1], n // 8),
    ])


@pytest.mark.parametrize("make_edges", [
    lambda rng: quantile_edges(rng.normal(size=5000)),
    lambda rng: quantile_edges(rng.lognormal(0, 3, size=5000)),  # very uneven spacing
    lambda rng: quantile_edges(rng.poisson(3, size=5000).astype(float)),  # ties
    lambda rng: np.array([0.0, np.nextafter(0.0, 1.0)]),  # a constant reference
    lambda rng: np.array([1e-300, 1e300]),  # a huge range
])
def test_bin_indices_equal_binary_search(make_edges):
    rng = np.random.default_rng(1)
    edges = make_edges(rng)
    x = _adversarial(rng, edges, 4 * _LUT_MIN_SIZE)
    assert x.size > _LUT_MIN_SIZE  # the lookup-table path runs
    np.testing.assert_array_equal(bin_indices(x, edges), np.searchsorted(edges, x, side="right"))


def test_quantile_edges_keep_the_maximum_in_range_and_dedupe():
    x = np.array([1.0, 1.0, 1.0, 2.0, 5.0])
    edges = quantile_edges(x, n_bins=4)
    assert np.all(np.diff(edges) > 0)
    assert edges[0] == 1.0 and edges[-1] > 5.0
    assert bin_indices(np.array([5.0]), edges)[0] == edges.size - 1  # in range, not above
    with pytest.raises(ValueError, match="empty"):
        quantile_edges(np.array([]))


@pytest.mark.parametrize("n", [1, 2, 7, 100, 100_003])
def test_exact_percentiles_match_numpy(n):
    rng = np.random.default_rng(n)
    x = np.round(rng.standard_t(3, size=n), 2)  # heavy tails and ties
    edges = quantile_edges(rng.standard_t(3, size=2000))
    idx = bin_indices(x, edges)
    counts = np.bincount(idx, minlength=edges.size + 1)
    assert exact_percentiles(x, idx, counts) == pytest.approx(np.percentile(x, PERCENTILES), rel=1e-12, abs=1e-12)


def test_interpolated_quantiles_stay_within_their_bin():
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, size=50_000)
    edges = quantile_edges(rng.gamma(2.0, size=5_000))
    counts = np.bincount(bin_indices(x, edges), minlength=edges.size + 1)
    xs, ys = cdf_knots(edges, counts, x.min(), x.max())
    approx = np.array(interpolated_quantiles(xs, ys))
    exact = np.percentile(x, PERCENTILES)
    # The error bound is the width of the bin holding the percentile.
    bins = np.searchsorted(xs, exact, side="right")
    widths = xs[np.clip(bins, 1, xs.size - 1)] - xs[np.clip(bins - 1, 0, xs.size - 2)]
    assert np.all(np.abs(approx - exact) <= widths)


def test_cdf_knots_are_exact_at_edges():
    x = np.array([0.5, 1.5, 1.5, 2.5, 9.0])
    edges = np.array([1.0, 2.0, 3.0])
    counts = np.bincount(bin_indices(x, edges), minlength=4)
    xs, ys = cdf_knots(edges, counts, x.min(), x.max())
    for e in edges:
        assert np.interp(e, xs, ys) == pytest.approx(np.mean(x < e))
