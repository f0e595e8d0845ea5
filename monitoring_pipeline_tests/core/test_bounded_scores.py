"""Output drift in sensible units: bounded scores (confidences, class probabilities in [0, 1])
are measured against a scale that cannot collapse when the reference has almost no spread."""

import numpy as np
import pytest

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.core.methods import (
    BOUNDED_SCALE_FLOOR,
    FeaturePair,
    wasserstein_normed,
    wasserstein_scale,
)
from monitoring_pipeline.core.noise import noise_floor
from monitoring_pipeline.core.numeric import NumericSummary
from monitoring_pipeline.core.profiles import DatasetProfile


def _confident(rng, n: int, shift: float = 0.0) -> np.ndarray:
    """Confidences of a very sure model: 1 - Exp(mean 0.003), minus ``shift``."""
    return np.clip(1.0 - rng.exponential(0.003, n) - shift, 0.0, 1.0)


def _pair(ref_values, cur_values, bounds=(0.0, 1.0)) -> FeaturePair:
    ref = NumericSummary.from_array(ref_values, bounds=bounds)
    return FeaturePair("confidence", "numeric", ref, NumericSummary.from_array(cur_values, ref.edges, bounds=bounds))


def test_a_bounded_score_is_measured_in_tenths_of_its_range_when_its_spread_is_smaller():
    rng = np.random.default_rng(0)
    ref, cur = _confident(rng, 2000), _confident(rng, 60, shift=0.02)
    bounded, unbounded = _pair(ref, cur), _pair(ref, cur, bounds=None)
    assert wasserstein_scale(bounded) == BOUNDED_SCALE_FLOOR
    assert wasserstein_scale(unbounded) == pytest.approx(ref.std(ddof=1))
    # a 0.02 fall in confidence: ~0.2 tenths of the range, not ~7 reference standard deviations
    assert wasserstein_normed(bounded) == pytest.approx(0.2, abs=0.03)
    assert wasserstein_normed(unbounded) > 5
    # a score whose spread is wider than the floor keeps its standard deviation
    wide_ref = rng.uniform(0.2, 0.9, 2000)
    wide = _pair(wide_ref, rng.uniform(0.2, 0.9, 60))
    assert wasserstein_scale(wide) == pytest.approx(wide_ref.std(ddof=1))


def test_the_noise_floor_is_in_the_same_units_as_the_distance():
    """With no shift, the mean distance of 60-value windows is close to the floor, bounded or not."""
    rng = np.random.default_rng(1)
    ref = _confident(rng, 2000)
    for bounds in ((0.0, 1.0), None):
        raws, floors = [], []
        for _ in range(200):
            pair = _pair(ref, _confident(rng, 60), bounds=bounds)
            raws.append(wasserstein_normed(pair))
            floors.append(noise_floor("wasserstein", pair))
        assert np.mean(raws) == pytest.approx(np.mean(floors), rel=0.25), bounds


def test_the_digits_like_confidence_reads_sensibly_in_a_report():
    rng = np.random.default_rng(2)
    ref = compute_dataset_profile({"predictions": np.zeros(2000, dtype=int), "confidences": _confident(rng, 2000)},
                                  "outputs")
    same = compute_dataset_profile({"predictions": np.zeros(60, dtype=int), "confidences": _confident(rng, 60)},
                                   "outputs", reference=ref)
    fall = compute_dataset_profile({"predictions": np.zeros(60, dtype=int),
                                    "confidences": _confident(rng, 60, shift=0.1)}, "outputs", reference=ref)
    row = {r["name"]: r for r in compare_profiles(ref, same)["features"]}["confidence"]
    assert row["effect_size"] < row["threshold"] and not row["drifted"]
    row = {r["name"]: r for r in compare_profiles(ref, fall)["features"]}["confidence"]
    assert row["drifted"] and row["effect_size"] == pytest.approx(1.0, abs=0.1)  # a tenth of the range


def test_bounds_survive_storage_and_merging_and_old_profiles_have_none():
    rng = np.random.default_rng(3)
    ref = NumericSummary.from_array(_confident(rng, 500), bounds=(0, 1))
    assert ref.bounds == (0.0, 1.0)
    a = NumericSummary.from_array(_confident(rng, 30), ref.edges, bounds=(0.0, 1.0))
    b = NumericSummary.from_array(_confident(rng, 30), ref.edges, bounds=(0.0, 1.0))
    assert a.merge(b).bounds == (0.0, 1.0)
    assert a.merge(NumericSummary.from_array(_confident(rng, 30), ref.edges)).bounds is None
    assert NumericSummary.from_dict(a.to_dict()) == a
    old = a.to_dict()
    del old["bounds"]  # a profile stored before bounds existed
    assert NumericSummary.from_dict(old).bounds is None
    profile = compute_dataset_profile({"predictions": np.zeros(30, dtype=int), "confidences": _confident(rng, 30)},
                                      "outputs")
    assert DatasetProfile.from_dict(profile.to_dict()).features["confidence"].bounds == (0.0, 1.0)


def test_an_old_reference_without_bounds_is_read_with_the_windows_bounds():
    rng = np.random.default_rng(4)
    values = _confident(rng, 2000)
    old_ref = NumericSummary.from_array(values)
    pair = FeaturePair("confidence", "numeric", old_ref,
                       NumericSummary.from_array(_confident(rng, 60), old_ref.edges, bounds=(0.0, 1.0)))
    assert wasserstein_scale(pair) == BOUNDED_SCALE_FLOOR


@pytest.mark.parametrize("bounds", [(1.0, 0.0), (0.0, float("inf")), (0.5, 0.5)])
def test_bad_bounds_are_refused(bounds):
    with pytest.raises(ValueError, match="bounds must be"):
        NumericSummary.from_array(np.array([0.5]), bounds=bounds)
