"""The domain-classifier drift test: its level and noise floor by simulation, power on real
digits, the features it names, imbalanced sides, bad input, and its place in the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage, stats
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.core import domain_classifier as dc
from monitoring_pipeline.core.domain_classifier import auc_noise_floor, domain_classifier_test, shift_effect
from monitoring_pipeline.core.methods import METHODS
from monitoring_pipeline.core.modalities import pooled_pixels

TWO_SE = 2 * math.sqrt(0.05 * 0.95)  # two standard errors of a 5% rejection rate, times sqrt(reps)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().images.reshape(-1, 1, 8, 8)


def _skewed(rng, rows: int, mix: np.ndarray) -> np.ndarray:
    return np.exp(rng.normal(size=(rows, mix.shape[0])) / 2) @ mix


def _null_runs(n: int, m: int, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """p-values and 2 AUC - 1 of ``reps`` windows drawn from the reference's distribution."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(9).normal(size=(8, 8))
    runs = [domain_classifier_test(_skewed(rng, n, mix), _skewed(rng, m, mix), seed=i) for i in range(reps)]
    return np.array([r.p_value for r in runs]), np.array([r.effect for r in runs])


def test_level_and_noise_floor_on_null_windows():
    p, effect = _null_runs(200, 60, reps=200, seed=1)
    assert np.mean(p <= 0.05) <= 0.05 + TWO_SE / math.sqrt(200)
    # the floor is the expected |2 AUC - 1| with no shift (cross-fitted: 1.3 times a fixed score's)
    assert np.mean(np.abs(effect)) == pytest.approx(auc_noise_floor(200, 60), rel=0.15)
    assert abs(np.mean(effect)) < 0.03  # centred near chance


def test_level_holds_with_imbalanced_sides():
    p, effect = _null_runs(500, 15, reps=150, seed=2)
    assert np.mean(p <= 0.05) <= 0.05 + TWO_SE / math.sqrt(150)
    assert np.mean(np.abs(effect)) == pytest.approx(auc_noise_floor(500, 15), rel=0.2)


def test_a_shift_is_detected_with_30_current_rows_against_1000():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=(1000, 6)), rng.normal(size=(30, 6))
    cur[:, 1] += 1.5
    result = domain_classifier_test(ref, cur)
    assert result.p_value < 0.01 and result.auc > 0.75
    assert (result.n_ref, result.n_cur, result.n_folds) == (1000, 30, 2)


def test_two_rows_a_side_is_enough_to_run():
    rng = np.random.default_rng(4)
    result = domain_classifier_test(rng.normal(size=(50, 3)), rng.normal(size=(2, 3)))
    assert result.n_folds == 2 and 0.0 <= result.p_value <= 1.0


def _rotated(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotated images brought back to the digits' integer 0..16 grid, so what is detected
    is the rotation and not values interpolation invents."""
    turned = np.stack([ndimage.rotate(im[0], degrees, reshape=False) for im in images])[:, None]
    return np.clip(np.rint(turned), 0, 16)


def test_power_on_digits_rotated_15_degrees_at_100_images(digits):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits))
    ref = pooled_pixels(digits[order[:1000]], 1)
    window = digits[order[1000:1100]]
    moved = domain_classifier_test(ref, pooled_pixels(_rotated(window, 15), 1))
    same = domain_classifier_test(ref, pooled_pixels(window, 1))
    assert moved.p_value < 1e-6 and moved.effect > METHODS["domain_classifier"].alert
    assert same.p_value > 0.05 and same.effect < METHODS["domain_classifier"].threshold


def test_the_named_features_are_the_two_that_changed():
    rng = np.random.default_rng(5)
    names = [f"col{i}" for i in range(10)]
    ref, cur = rng.normal(size=(800, 10)), rng.normal(size=(300, 10))
    cur[:, 3] += 0.6  # a moved mean
    cur[:, 7] *= 1.8  # a wider spread
    result = domain_classifier_test(ref, cur, feature_names=names)
    top = [f["feature"] for f in result.features]
    assert set(top[:2]) == {"col3", "col7"}
    assert len(result.features) == dc.TOP_FEATURES
    shares = [f["importance"] for f in result.features]
    assert shares == sorted(shares, reverse=True) and shares[0] + shares[1] > 0.5  # of ten columns
    assert domain_classifier_test(ref, cur).features == []  # nothing is named without names


def test_rows_with_nan_are_dropped_and_counted():
    rng = np.random.default_rng(6)
    ref, cur = rng.normal(size=(100, 4)), rng.normal(size=(40, 4))
    ref[[3, 9], 1] = np.nan
    cur[0, 0] = np.inf
    result = domain_classifier_test(ref, cur)
    assert (result.n_ref, result.n_dropped_ref, result.n_cur, result.n_dropped_cur) == (98, 2, 39, 1)


@pytest.mark.parametrize("ref, cur, message", [
    (np.zeros((10, 3)), np.zeros((1, 3)), "current side has 1 finite rows"),
    (np.zeros((1, 3)), np.zeros((10, 3)), "reference side has 1 finite rows"),
    (np.zeros((10, 3)), np.full((5, 3), np.nan), r"0 finite rows \(5 dropped"),
    (np.zeros((10, 3)), np.zeros((10, 4)), "3 features and current rows 4"),
    (np.zeros(10), np.zeros((10, 1)), "2-d"),
    (np.array([["a"], ["b"]], dtype=object), np.zeros((2, 1)), "numbers"),
    (np.zeros((10, 0)), np.zeros((10, 0)), "no features"),
])
def test_bad_input_gets_a_clear_error(ref, cur, message):
    with pytest.raises(ValueError, match=message):
        domain_classifier_test(ref, cur)


def test_feature_names_must_name_every_column():
    with pytest.raises(ValueError, match="2 feature names for 3 features"):
        domain_classifier_test(np.zeros((5, 3)), np.ones((5, 3)), feature_names=["a", "b"])


def test_thresholds_are_the_auc_of_the_projects_mean_shifts():
    method = METHODS["domain_classifier"]
    assert method.threshold == pytest.approx(0.1325, abs=1e-4) and method.alert == pytest.approx(0.2646, abs=1e-4)
    rng = np.random.default_rng(7)
    for d, effect in ((0.236, method.threshold), (0.478, method.alert)):
        x, y = rng.normal(size=200_000), rng.normal(size=200_000) + d
        auc = roc_auc_score(np.r_[np.zeros(x.size), np.ones(y.size)], np.r_[x, y])  # the value itself is the best score
        assert 2 * auc - 1 == pytest.approx(effect, abs=0.005)
        assert shift_effect(d) == pytest.approx(2 * stats.norm.cdf(d / math.sqrt(2)) - 1)


def test_the_report_uses_it_when_asked_and_fits_once_per_feature(digits, monkeypatch):
    calls = []
    real = dc.domain_classifier_test
    monkeypatch.setattr(dc, "domain_classifier_test", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits))
    ref = compute_dataset_profile(digits[order[:1200]], "vision")
    window = digits[order[1200:1300]]
    choice = {"pixels": "domain_classifier"}
    moved = compare_profiles(ref, compute_dataset_profile(_rotated(window, 15), "vision", reference=ref),
                             thresholds=choice)
    row = {r["name"]: r for r in moved["features"]}["pixels"]
    assert len(calls) == 1  # one fit for the effect size and the test
    assert row["method"] == row["test"] == "domain_classifier"
    assert row["drifted"] and row["severity"] == "alert"
    assert row["effect_size"] < row["effect_size_raw"] and row["noise_floor"] > 0
    assert row["discriminating"] and row["discriminating"][0]["feature"].startswith("axis_")
    same = compare_profiles(ref, compute_dataset_profile(window, "vision", reference=ref), thresholds=choice)
    row = {r["name"]: r for r in same["features"]}["pixels"]
    assert not row["drifted"] and row["p_value"] > 0.05


def test_a_one_image_window_is_left_untested(digits):
    ref = compute_dataset_profile(digits[:300], "vision")
    report = compare_profiles(ref, compute_dataset_profile(digits[300:301], "vision", reference=ref),
                              thresholds={"pixels": "domain_classifier"})
    row = {r["name"]: r for r in report["features"]}["pixels"]
    assert row["p_value"] is None and not row["drifted"] and row["effect_size"] == 0.0
