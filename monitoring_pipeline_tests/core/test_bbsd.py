"""Black-box shift detection (Rabanser et al. 2019) on the outputs profile: one KS test per
class probability, corrected with the rest of the report, on real digits and a real classifier."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.core.profiles import DatasetProfile

PROBABILITIES = [f"probability_{d}" for d in range(10)]


@pytest.fixture(scope="module")
def digits_outputs():
    """A classifier fitted on 600 digits, and its outputs on the other 1,197 in random order."""
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    fit, rest = order[:600], order[600:]
    model = LogisticRegression(max_iter=2000).fit(X[fit] / 16.0, y[fit])
    proba = model.predict_proba(X[rest] / 16.0)
    return {"probabilities": proba, "labels": y[rest], "classes": model.classes_,
            "predictions": model.classes_[proba.argmax(axis=1)]}


def _profile(outputs: dict, rows: np.ndarray, reference=None) -> DatasetProfile:
    data = {"predictions": outputs["predictions"][rows], "probabilities": outputs["probabilities"][rows],
            "classes": outputs["classes"]}
    return compute_dataset_profile(data, "outputs", reference=reference)


def _halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def test_outputs_with_probabilities_get_one_bounded_feature_per_class(digits_outputs):
    ref = _profile(digits_outputs, np.arange(300))
    assert set(ref.features) == {"predicted_class", "confidence", *PROBABILITIES}
    for name in ["confidence", *PROBABILITIES]:
        assert ref.features[name].bounds == (0.0, 1.0)
    # the probability of a class is that column of the matrix, binned like any number
    p3 = digits_outputs["probabilities"][:300, 3]
    assert ref.features["probability_3"].moments.mean == pytest.approx(p3.mean())
    day = _profile(digits_outputs, np.arange(300, 360), reference=ref)
    assert day.features["probability_3"].edges == ref.features["probability_3"].edges
    back = DatasetProfile.from_dict(day.to_dict())
    assert back.features["probability_3"] == day.features["probability_3"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_class_mix_change_is_detected_by_the_class_probabilities(digits_outputs, seed):
    ref_rows, cur_pool = _halves(len(digits_outputs["labels"]), seed)
    ref = _profile(digits_outputs, ref_rows)
    low = cur_pool[digits_outputs["labels"][cur_pool] <= 4]  # only digits 0-4: about 300 images
    report = compare_profiles(ref, _profile(digits_outputs, low, reference=ref))
    rows = {r["name"]: r for r in report["features"]}
    assert all(rows[name]["test"] == "ks" for name in PROBABILITIES)
    # Holm across all 12 features: at least two class probabilities are drifted on their own,
    # the vanished class 5 among them, and most of the ten KS tests reject before correction
    drifted = {name for name in PROBABILITIES if rows[name]["drifted"]}
    assert len(drifted) >= 2 and "probability_5" in drifted, sorted(drifted)
    assert sum(rows[name]["p_value"] < 0.05 for name in PROBABILITIES) >= 7
    assert rows["predicted_class"]["drifted"]


def test_at_100_images_the_predicted_classes_carry_the_class_mix_change(digits_outputs):
    """Per-class KS needs a few hundred images for this shift (as in Rabanser et al.); the
    chi-square on predicted classes, in the same report, already sees it at 100."""
    ref_rows, cur_pool = _halves(len(digits_outputs["labels"]), 1)
    ref = _profile(digits_outputs, ref_rows)
    low = cur_pool[digits_outputs["labels"][cur_pool] <= 4][:100]
    report = compare_profiles(ref, _profile(digits_outputs, low, reference=ref))
    assert report["status"] != "ok"
    assert next(r for r in report["features"] if r["name"] == "predicted_class")["drifted"]


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_a_random_split_of_the_same_digits_is_not_drift(digits_outputs, seed):
    ref_rows, cur_rows = _halves(len(digits_outputs["labels"]), seed)
    ref = _profile(digits_outputs, ref_rows)
    for size in (60, len(cur_rows)):
        report = compare_profiles(ref, _profile(digits_outputs, cur_rows[:size], reference=ref))
        assert report["n_features"] == 12
        assert report["n_drifted"] == 0, report["summary"]


def test_probability_columns_take_the_class_labels_or_their_index():
    proba = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]])
    named = compute_dataset_profile({"predictions": np.array(["dog", "cat", "cat"]), "probabilities": proba,
                                     "classes": ["cat", "dog"]}, "outputs")
    assert {"probability_cat", "probability_dog"} <= set(named.features)
    alone = compute_dataset_profile(proba, "outputs")  # a probability matrix alone: column indices
    assert {"probability_0", "probability_1"} <= set(alone.features)


@pytest.mark.parametrize("data, message", [
    ({"predictions": np.zeros(2), "probabilities": np.array([[0.5, 1.5], [0.5, 0.5]])}, "must lie in \\[0, 1\\]"),
    ({"predictions": np.zeros(2), "confidences": np.array([0.5, -0.2])}, "confidences must lie in"),
    ({"predictions": np.zeros(2), "probabilities": np.full((2, 2), 0.5), "classes": ["a"]}, "1 labels for 2"),
    ({"predictions": np.zeros(2), "probabilities": np.full((2, 2), 0.5), "classes": ["a", "a"]}, "duplicate"),
    ({"predictions": np.zeros(2), "classes": ["a", "b"]}, "needs 'probabilities'"),
])
def test_bad_probabilities_are_refused_naming_the_problem(data, message):
    with pytest.raises(ValueError, match=message):
        compute_dataset_profile(data, "outputs")


def test_a_missing_probability_is_missing_not_a_number():
    proba = np.array([[0.2, 0.8], [np.nan, np.nan], [0.6, 0.4]])
    profile = compute_dataset_profile({"predictions": np.array([1, 0, 0]), "probabilities": proba}, "outputs")
    assert profile.features["probability_0"].n_missing == 1
    assert profile.features["confidence"].n_missing == 1
    assert profile.features["confidence"].moments.mean == pytest.approx(0.7)
