"""The noise floors are the effect sizes seen with no shift, and the correction removes them."""

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core.drift import compare_profiles
from monitoring_pipeline.core.noise import corrected
from monitoring_pipeline.core.profiles import compute_dataset_profile


def _null_rows(make, n, reps, thresholds=None, seed=0):
    rng = np.random.default_rng(seed)
    ref = compute_dataset_profile(make(rng, 20_000), "tabular")
    rows = []
    for _ in range(reps):
        cur = compute_dataset_profile(make(rng, n), "tabular", reference=ref)
        rows.append(compare_profiles(ref, cur, thresholds=thresholds)["features"][0])
    return rows


@pytest.mark.parametrize("method", ["wasserstein", "ks", "jensenshannon", "psi"])
def test_numeric_floor_is_the_mean_raw_effect_with_no_shift(method):
    rows = _null_rows(lambda rng, n: pd.DataFrame({"x": rng.gamma(2.0, size=n)}), 60, 300,
                      thresholds={"numeric": method})
    raw = np.mean([r["effect_size_raw"] for r in rows])
    assert rows[0]["noise_floor"] == pytest.approx(raw, rel=0.15)


def test_categorical_floor_is_the_mean_raw_js_with_no_shift():
    probs = [0.4, 0.3, 0.2, 0.07, 0.03]
    rows = _null_rows(lambda rng, n: pd.DataFrame({"c": rng.choice(list("abcde"), n, p=probs)}), 80, 300)
    mean_squared = np.mean([r["effect_size_raw"] ** 2 for r in rows])
    assert rows[0]["noise_floor"] ** 2 == pytest.approx(mean_squared, rel=0.15)


def test_correction_removes_noise_but_keeps_real_shifts():
    rows = _null_rows(lambda rng, n: pd.DataFrame({"x": rng.normal(size=n)}), 40, 100)
    assert np.mean([r["effect_size_raw"] for r in rows]) > 0.1
    assert np.median([r["effect_size"] for r in rows]) < 0.05
    rng = np.random.default_rng(1)
    ref = compute_dataset_profile(pd.DataFrame({"x": rng.normal(size=20_000)}), "tabular")
    cur = compute_dataset_profile(pd.DataFrame({"x": rng.normal(1.0, 1, 40)}), "tabular", reference=ref)
    row = compare_profiles(ref, cur)["features"][0]
    assert row["effect_size"] == pytest.approx(row["effect_size_raw"], abs=0.03)


def test_corrected_arithmetic():
    assert corrected("wasserstein", 0.5, 0.3) == pytest.approx(0.4)
    assert corrected("psi", 0.5, 0.3) == pytest.approx(0.2)
    assert corrected("jensenshannon", 0.1, 0.2) == 0.0
