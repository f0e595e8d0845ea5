"""The embedding test's level on isotropic embeddings, where the reference's fitted basis
matters: a CNN's penultimate layer or a sentence embedding has many dimensions of
similar variance, unlike the skewed, correlated 20-dim rows of test_embedding.py."""

from __future__ import annotations

import numpy as np

from monitoring_pipeline.core.embedding import EmbeddingSummary, embedding_test

REPS = 150
LIMIT = 0.05 + 3 * np.sqrt(0.05 * 0.95 / REPS)  # alpha plus three standard errors (a flake in ~1 of 700 runs)


def _rate(d: int, n: int, m: int, *, independent_basis: bool) -> float:
    hits = 0
    for seed in range(REPS):
        rng = np.random.default_rng(seed)
        ref, cur = rng.normal(size=(n, d)), rng.normal(size=(m, d))
        basis = EmbeddingSummary.from_array(rng.normal(size=(n, d))) if independent_basis else None
        r = EmbeddingSummary.from_array(ref, basis)
        c = EmbeddingSummary.from_array(cur, r)
        hits += embedding_test(r, c, rng, 500).p_value <= 0.05
    return hits / REPS


def test_with_a_basis_fitted_elsewhere_the_level_holds():
    # the same rows and test, the principal axes taken from other rows of the distribution
    assert _rate(32, 900, 300, independent_basis=True) <= LIMIT


def test_with_the_basis_fitted_on_the_reference_the_level_holds():
    # The reference fits its axes on half of its rows and summarises the other half; fitted
    # on the rows it summarised, this rejected about 90% of these null windows.
    assert _rate(32, 900, 300, independent_basis=False) <= LIMIT


def test_the_reference_summarises_the_half_its_basis_was_not_fitted_on():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 8))
    r = EmbeddingSummary.from_array(x)
    assert 400 < r.count < 600 and r.n_missing == 0
    tiny = EmbeddingSummary.from_array(x[:19])
    assert tiny.count == 19  # too few rows to split
