"""The embedding test: level by simulation on both of its paths, power on real images,
exact merging, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from sklearn.datasets import load_digits

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.core.embedding import EmbeddingSummary, embedding_test, mean_distance
from monitoring_pipeline.core.profiles import DatasetProfile, merge_profiles


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().images.reshape(-1, 1, 8, 8)


def _rejections(make_pair, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        ref, cur = make_pair(rng)
        r = EmbeddingSummary.from_array(ref)
        c = EmbeddingSummary.from_array(cur, r)
        hits += embedding_test(r, c, rng, 500).p_value <= 0.05
    return hits / reps


def test_level_holds_on_the_permutation_path():
    # 40 skewed, correlated 20-dim rows against a reference of 500: the current window is held whole
    mix = np.random.default_rng(9).normal(size=(20, 20))

    def pair(rng):
        return np.exp(rng.normal(size=(500, 20)) / 2) @ mix, np.exp(rng.normal(size=(40, 20)) / 2) @ mix

    rate = _rejections(pair, 200, seed=1)
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 200)  # within three standard errors of alpha


def test_level_holds_on_the_analytic_path():
    mix = np.random.default_rng(9).normal(size=(20, 20))

    def pair(rng):
        return np.exp(rng.normal(size=(3000, 20)) / 2) @ mix, np.exp(rng.normal(size=(2000, 20)) / 2) @ mix

    r = EmbeddingSummary.from_array(pair(np.random.default_rng(0))[0])
    assert not EmbeddingSummary.from_array(pair(np.random.default_rng(0))[1], r).whole  # the analytic path
    rate = _rejections(pair, 200, seed=2)
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 200)


def test_a_shift_in_one_direction_is_detected_and_its_effect_reads_in_standard_deviations():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=(5000, 8)), rng.normal(size=(5000, 8))
    cur[:, 2] += 0.5
    r = EmbeddingSummary.from_array(ref)
    c = EmbeddingSummary.from_array(cur, r)
    assert embedding_test(r, c, rng).p_value < 1e-6
    md = mean_distance(r, c)
    # the linear part alone would read 0.5; the Fourier features add the change of shape they see
    assert 0.45 < md.distance < 0.9
    assert md.floor == pytest.approx(np.sqrt(md.rank * (1 / r.count + 1 / 5000)))


def test_rotated_digits_drift_and_a_random_split_does_not(digits):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits))
    ref = compute_dataset_profile(digits[order[:1200]], "vision")
    window = digits[order[1200:1260]]
    rotated = np.stack([ndimage.rotate(image[0], 15, reshape=False) for image in window])[:, None]
    same = compare_profiles(ref, compute_dataset_profile(window, "vision", reference=ref))
    moved = compare_profiles(ref, compute_dataset_profile(rotated, "vision", reference=ref))
    pixels = {r["name"]: r for r in same["features"]}["pixels"]
    assert not pixels["drifted"] and pixels["p_value"] > 0.05
    pixels = {r["name"]: r for r in moved["features"]}["pixels"]
    assert pixels["drifted"] and pixels["severity"] == "alert" and pixels["method"] == "mean_embedding"
    assert pixels["js"] is None  # no histogram: the yardstick is left out, not invented


def test_shards_merge_into_the_whole_windows_summary_and_verdict(digits):
    ref = compute_dataset_profile(digits[:1000], "vision")
    ref = DatasetProfile.from_dict(json.loads(json.dumps(ref.to_dict())))  # as stored
    shards = [compute_dataset_profile(digits[i:i + 150], "vision", reference=ref) for i in (1000, 1150)]
    whole = compute_dataset_profile(digits[1000:1300], "vision", reference=ref)
    merged = merge_profiles(*shards)
    a, b = merged.features["pixels"], whole.features["pixels"]
    assert a.count == b.count == 300 and a.whole  # held whole: the same rows, keyed apart
    order = [np.lexsort(x.sample.T[::-1]) for x in (a, b)]
    np.testing.assert_allclose(a.sample[order[0]], b.sample[order[1]], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.outer, b.outer, rtol=1e-12, atol=1e-9)
    row_a = {r["name"]: r for r in compare_profiles(ref, merged)["features"]}["pixels"]
    row_b = {r["name"]: r for r in compare_profiles(ref, whole)["features"]}["pixels"]
    assert row_a["p_value"] == row_b["p_value"] and row_a["drifted"] == row_b["drifted"]
    assert row_a["effect_size_raw"] == pytest.approx(row_b["effect_size_raw"], rel=1e-9)


def test_a_merged_sample_is_a_sample_of_the_union_and_repeated_rows_are_not_kept_together():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5000, 6))
    r = EmbeddingSummary.from_array(x[:100], capacity=50)
    parts = [EmbeddingSummary.from_array(x[i:i + 700], r, seed=i) for i in range(0, 5000, 700)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged.sample.shape == (50, r.basis.axes.shape[0]) and merged.count == 5000
    assert np.all(np.diff(merged.keys) >= 0)
    z = r.basis.coordinates(x)
    # every sampled row is one of the union's rows
    assert all(np.isclose(z, row).all(axis=1).any() for row in merged.sample)
    # 200 copies each of 25 rows: a sample of 50 holds many of the 25, not a couple of them
    repeated = np.repeat(rng.normal(size=(25, 6)), 200, axis=0)
    s = EmbeddingSummary.from_array(repeated, r)
    assert len(np.unique(np.round(s.sample, 9), axis=0)) >= 15


def test_missing_rows_are_counted_and_left_out():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(100, 4))
    x[3, 1], x[7, 0] = np.nan, np.inf
    basis = EmbeddingSummary.from_array(rng.normal(size=(100, 4)))
    s = EmbeddingSummary.from_array(x, basis)
    assert (s.count, s.n_missing) == (98, 2) and s.missing_share == pytest.approx(0.02)
    assert EmbeddingSummary.from_array(x).n_missing == 2  # a reference: half its finite rows fit the basis
    nothing = EmbeddingSummary.from_array(np.full((5, 4), np.nan), s)
    assert nothing.count == 0 and embedding_test(s, nothing, rng).p_value == 1.0


def test_images_with_nan_pixels_are_missing_rows_of_the_pixel_embedding(digits):
    images = digits[:80].copy()
    images[0, 0, 3, 3] = np.nan
    ref = compute_dataset_profile(digits[100:400], "vision")
    profile = compute_dataset_profile(images, "vision", reference=ref)
    assert profile.features["pixels"].n_missing == 1 and profile.features["pixels"].count == 79


@pytest.mark.parametrize("bad, message", [
    (np.zeros(5), "2-d"),
    (np.zeros((5, 0)), "no dimensions"),
    (np.array([["a", "b"]], dtype=object), "numbers"),
])
def test_bad_embeddings_get_a_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        EmbeddingSummary.from_array(bad)


def test_embeddings_of_another_width_or_reference_are_refused():
    rng = np.random.default_rng(6)
    r = EmbeddingSummary.from_array(rng.normal(size=(50, 4)))
    with pytest.raises(ValueError, match="4"):
        EmbeddingSummary.from_array(rng.normal(size=(50, 5)), r)
    other = EmbeddingSummary.from_array(rng.normal(size=(50, 4)) + 1)
    with pytest.raises(ValueError, match="different references"):
        r.merge(other)


def test_precomputed_embeddings_ride_with_images_and_texts_and_survive_sampling(digits):
    rng = np.random.default_rng(7)
    emb = rng.normal(size=(40, 3))
    images = [digits[i] for i in range(40)]
    images[5] = np.zeros((1, 6, 6))  # another shape: the batches regroup, the embeddings follow
    ref = compute_dataset_profile({"pixel_values": digits[:100], "embeddings": rng.normal(size=(100, 3))}, "vision")
    profile = compute_dataset_profile({"pixel_values": images, "embeddings": emb}, "vision", sample_size=30,
                                      reference=ref)
    assert profile.features["embedding"].count == 30
    ref = compute_dataset_profile({"text": ["a b"] * 10, "embeddings": rng.normal(size=(10, 3))}, "text")
    text = compute_dataset_profile({"text": ["a b"] * 40, "embeddings": emb}, "text", reference=ref)
    assert text.features["embedding"].count == 40
    with pytest.raises(ValueError, match="39 rows for 40"):
        compute_dataset_profile({"text": ["a b"] * 40, "embeddings": emb[:39]}, "text")
    with pytest.raises(ValueError, match="numeric"):
        compute_dataset_profile({"pixel_values": digits[:2], "embeddings": [["x"], ["y"]]}, "vision")


def test_a_stored_summary_round_trips(digits):
    profile = compute_dataset_profile(digits[:200], "vision")
    back = DatasetProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    a, b = profile.features["pixels"], back.features["pixels"]
    assert a.basis.fingerprint() == b.basis.fingerprint()
    assert np.array_equal(a.outer, b.outer) and np.array_equal(a.sample, b.sample)


def test_the_plot_shows_the_direction_in_which_the_mean_moved(digits):
    from monitoring_pipeline.core.embedding import witness_shares
    from monitoring_pipeline.core.methods import FeaturePair
    from monitoring_pipeline.lib.plots import drift_plot, feature_shares

    ref = compute_dataset_profile(digits[:1000], "vision")
    flipped = compute_dataset_profile(digits[1000:1100, :, ::-1], "vision", reference=ref)
    same = compute_dataset_profile(digits[np.random.default_rng(0).choice(1000, 100, replace=False)], "vision",
                                   reference=ref)  # drawn from the reference itself
    edges, r, c = witness_shares(ref.features["pixels"], flipped.features["pixels"])
    assert edges.size == 9 and r.sum() == pytest.approx(1) and c.sum() == pytest.approx(1)
    assert c[-1] > 0.4  # upside-down digits pile up at one end of the axis; the reference spreads evenly
    _, r, c = witness_shares(ref.features["pixels"], same.features["pixels"])
    assert c.max() < 0.3  # the axis is the one the means moved along most, so some tilt is expected
    pair = FeaturePair("pixels", "embedding", ref.features["pixels"], flipped.features["pixels"])
    labels, _, _ = feature_shares(pair)
    assert len(labels) == 10 and " to " in labels[1]
    assert drift_plot(pair, "pixels").startswith("data:image/png;base64,")
