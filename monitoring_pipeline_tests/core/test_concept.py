import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core.concept import concept_drift


def period(rng, n, driver="x1"):
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.normal(size=n),
                      "kind": rng.choice(["a", "b", "c"], n)})
    y = (X[driver] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


def test_same_relation_is_not_concept_drift():
    rng = np.random.default_rng(0)
    res = concept_drift(*period(rng, 800), *period(rng, 800))
    assert not res.drifted and res.severity == "ok"
    assert res.importance_correlation > 0.9
    assert abs(res.performance_change) < 0.05


def test_a_changed_relation_is_found_with_the_features_that_moved():
    rng = np.random.default_rng(1)
    res = concept_drift(*period(rng, 800), *period(rng, 800, driver="x2"))
    assert res.drifted and res.severity == "alert"
    assert res.importance_correlation < 0.7
    assert {res.importances[0]["feature"], res.importances[1]["feature"]} == {"x1", "x2"}
    assert res.performance_change < -0.2
    assert res.current_score > res.reference_on_current + 0.2
    assert len(res.reasons) == 2
    assert res.to_dict()["importances"][0]["change"] == res.importances[0]["change"]


def test_covariate_shift_alone_is_not_concept_drift():
    rng = np.random.default_rng(2)
    X_ref, y_ref = period(rng, 800)
    X_cur = X_ref.assign(x3=X_ref["x3"] + 2.0)  # an irrelevant feature moves
    res = concept_drift(X_ref, y_ref, X_cur, y_ref)
    assert not res.drifted


def test_seeded_and_robust_to_missing_values():
    rng = np.random.default_rng(3)
    X_ref, y_ref = period(rng, 300)
    X_cur, y_cur = period(rng, 300)
    X_cur.loc[:20, "x1"] = np.nan
    X_cur.loc[21:25, "x2"] = np.inf
    X_cur.loc[26:30, "kind"] = "unseen"
    a = concept_drift(X_ref, y_ref, X_cur, y_cur, seed=5)
    b = concept_drift(X_ref, y_ref, X_cur, y_cur, seed=5)
    assert a == b


def test_regression_targets():
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    res = concept_drift(X, 2 * X["a"] + rng.normal(0, 0.1, 500), X, 2 * X["b"] + rng.normal(0, 0.1, 500))
    assert res.task == "regression" and res.metric == "r2" and res.drifted


@pytest.mark.parametrize("change,message", [
    (lambda X, y: (X.iloc[:5], y[:5]), "at least"),
    (lambda X, y: (X.drop(columns="x2"), y), "lacks"),
    (lambda X, y: (X, y[:-1]), "one label per row"),
    (lambda X, y: (X, y * 0), "two classes"),
    (lambda X, y: (X, y.astype(float).where(y.index > 3)), "missing"),
])
def test_bad_input_raises(change, message):
    rng = np.random.default_rng(5)
    X, y = period(rng, 200)
    with pytest.raises(ValueError, match=message):
        concept_drift(X, y, *change(X.copy(), y.copy()))


def test_image_features_pool_each_channel_to_a_grid():
    from monitoring_pipeline.core.concept import image_features

    images = np.arange(2 * 3 * 16 * 16, dtype=np.float64).reshape(2, 3, 16, 16)
    feats = image_features(images, grid=8)
    assert feats.shape == (2, 3 * 64) and feats.columns[0] == "ch0_r0_c0" and feats.columns[-1] == "ch2_r7_c7"
    assert feats.iloc[0, 0] == images[0, 0, :2, :2].mean()
    small = np.ones((4, 1, 8, 8))
    assert image_features(small).shape == (4, 64)  # an 8x8 digit keeps its pixels
    with pytest.raises(ValueError, match="N, C, H, W"):
        image_features(np.ones((4, 8, 8)))


def test_concept_drift_on_digit_images_alerts_on_rotation_and_not_on_a_fresh_sample():
    from monitoring_pipeline.core.concept import IMAGE_OPTIONS, image_features
    from monitoring_pipeline.demo.bundled import bundled
    from monitoring_pipeline.demo.drift import inject

    data = bundled("digits")
    pixels = lambda frame: image_features(np.stack([np.asarray(x) for x in frame["image"]]))  # noqa: E731
    ref_X, ref_y = pixels(data.reference), data.reference["label"].astype(str).to_numpy()
    window = data.current.sample(60, random_state=3).reset_index(drop=True)
    y = window["label"].astype(str).to_numpy()
    fresh = concept_drift(ref_X, ref_y, pixels(window), y, **IMAGE_OPTIONS)
    rotated = concept_drift(ref_X, ref_y, pixels(inject(window, "rotation", 30.0, image_column="image")), y,
                            **IMAGE_OPTIONS)
    assert fresh.severity == "ok" and not fresh.drifted
    assert rotated.severity == "alert" and rotated.performance_change < -0.2
    assert rotated.performance_p_adjusted <= 0.05 < fresh.performance_p_adjusted


# The permutation test on real rows: scikit-learn's breast-cancer table, split at random
# by the bundled data set (398 reference rows, 171 held-out rows the windows come from).

def breast_cancer():
    from monitoring_pipeline.demo.bundled import bundled

    data = bundled("breast_cancer")
    features = [c for c in data.reference.columns if c != "label"]
    return data.reference[features], data.reference["label"].to_numpy(), data.current, features


def test_null_windows_of_60_real_rows_false_alarm_at_about_alpha():
    # The test is exact at any size of forest; smaller forests keep this test quick
    # (benchmarks/concept_calibration.py measures the rate with the defaults).
    ref_X, ref_y, held_out, features = breast_cancer()
    small = {"n_estimators": 20, "test_estimators": 10}
    results = []
    for seed in range(30):
        window = held_out.sample(60, random_state=seed)
        results.append(concept_drift(ref_X, ref_y, window[features], window["label"].to_numpy(), seed=seed, **small))
    assert sum(r.drifted for r in results) <= 3  # 10% of 30; alpha is 5%
    p_values = [p for r in results for p in (r.importance_p_value, r.performance_p_value)]
    assert None not in p_values and all(0 < p <= 1 for p in p_values)
    assert sum(p <= 0.2 for p in p_values) <= 0.3 * len(p_values)  # valid p-values: about 20% at most
    stopped = [r for r in results if r.n_permutations < 99]
    assert len(stopped) > 15  # unremarkable windows stop early ...
    assert all(min(r.importance_p_value, r.performance_p_value) >= 5 / 99 for r in stopped)  # ... never below alpha


def test_flipped_labels_are_found_by_the_performance_test_not_the_importances():
    ref_X, ref_y, held_out, features = breast_cancer()
    window = held_out.sample(60, random_state=0)
    res = concept_drift(ref_X, ref_y, window[features], 1 - window["label"].to_numpy())
    assert res.drifted and res.severity == "alert"
    assert res.performance_p_value <= 0.01 and res.performance_p_adjusted <= 0.05 and res.performance_gap > 0.5
    assert res.importance_p_adjusted > 0.05 and res.importance_correlation > 0.7  # the same features still decide
    assert res.n_permutations == 99
    assert [s["signal"] for s in res.signals() if s["drifted"]] == ["performance_gap"]


def test_a_new_driver_of_the_label_is_found_by_the_importance_test():
    # The label now follows "texture error", which says nothing of the diagnosis in the
    # reference (correlation 0.005): importances move, with evidence, in 60 rows.
    ref_X, ref_y, held_out, features = breast_cancer()
    window = held_out.sample(60, random_state=1)
    y = (window["texture error"] > ref_X["texture error"].median()).astype(int).to_numpy()
    res = concept_drift(ref_X, ref_y, window[features], y)
    assert res.importance_correlation < 0.7 and res.importance_p_adjusted <= 0.05
    assert "feature importances changed" in res.reasons[0]
    assert res.importances[0]["feature"] == "texture error" and res.importances[0]["change"] > 0
    importance = res.signals()[0]
    assert importance["drifted"] and importance["effect"] == pytest.approx(1 - res.importance_correlation)


def test_p_values_are_holm_adjusted_together_and_exposed():
    from monitoring_pipeline.core.stattests import holm

    rng = np.random.default_rng(1)
    res = concept_drift(*period(rng, 300), *period(rng, 300, driver="x2"))
    raw = [res.importance_p_value, res.performance_p_value]
    assert [res.importance_p_adjusted, res.performance_p_adjusted] == holm(np.array(raw)).tolist()
    assert max(raw) <= 0.05 and res.severity == "alert"
    rows = res.to_dict()["signals"]
    assert [(r["signal"], r["p_value"], r["severity"]) for r in rows] == [
        ("importance_correlation", raw[0], "warn"), ("performance_gap", raw[1], "alert")]


def test_an_effect_without_evidence_is_not_drift():
    # 20 rows a side: the relation really changed, but with 9 permutations the smallest
    # p-value is 0.1, so no signal is significant and nothing is flagged.
    rng = np.random.default_rng(6)
    res = concept_drift(*period(rng, 200), *period(rng, 20, driver="x2"), n_permutations=9)
    assert res.importance_correlation < 0.7 and res.performance_gap > 0.05
    assert min(res.importance_p_value, res.performance_p_value) >= 0.1
    assert not res.drifted and res.severity == "ok" and res.reasons == []


@pytest.mark.parametrize("options,message", [
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": 1.5}, "alpha"),
    ({"n_permutations": 0}, "n_permutations"),
    ({"stop_after": 0}, "stop_after"),
    ({"max_rows": 1}, "max_rows"),
])
def test_bad_test_options_raise(options, message):
    rng = np.random.default_rng(7)
    with pytest.raises(ValueError, match=message):
        concept_drift(*period(rng, 50), *period(rng, 50), **options)


def test_the_current_period_is_capped_at_max_rows():
    rng = np.random.default_rng(8)
    res = concept_drift(*period(rng, 200), *period(rng, 400, driver="x2"), max_rows=100)
    assert res.severity == "alert" and res.performance_p_adjusted <= 0.05
