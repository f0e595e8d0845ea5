import json

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core.drift import compare_profiles
from monitoring_pipeline.core.profiles import compute_dataset_profile, merge_profiles
from monitoring_pipeline.core.rounding import fmt_sig


def profile(data, modality="tabular", reference=None):
    return compute_dataset_profile(data, modality, reference=reference)


def row(report, name):
    return next(r for r in report["features"] if r["name"] == name)


# --- the seed's (T081) scenarios -------------------------------------------------------

def test_sequence_length_120_vs_200_is_an_alert():
    rng = np.random.default_rng(0)

    def docs(mean):
        return [{"input_ids": rng.integers(0, 500, max(1, int(n))).tolist()}
                for n in rng.normal(mean, 20, 400)]

    ref = profile(docs(120), "text")
    report = compare_profiles(ref, profile(docs(200), "text", ref))
    assert report["drift_scores"]["length"] > 0.2
    assert report["status"] == "alert"
    assert row(report, "length")["drifted"]
    assert not row(report, "tokens")["drifted"]  # same vocabulary, same frequencies


def test_channel_means_shift_flags_channel_0():
    rng = np.random.default_rng(1)

    def images(means):
        return np.clip(rng.normal(np.array(means)[None, :, None, None], 0.1, (200, 3, 16, 16)), 0, 1)

    ref = profile(images([0.5, 0.5, 0.5]), "vision")
    report = compare_profiles(ref, profile(images([0.6, 0.4, 0.5]), "vision", ref))
    assert row(report, "channel_0_mean")["drifted"]
    assert row(report, "channel_0_mean")["cur_pixel_mean"] == pytest.approx(0.6, abs=0.01)
    assert row(report, "channel_1_mean")["drifted"]
    assert not row(report, "channel_2_mean")["drifted"]


def test_output_classes_40_60_vs_80_20_give_kl_above_half_and_an_alert():
    ref = profile(np.array([0] * 400 + [1] * 600), "outputs")
    cur = profile(np.array([0] * 800 + [1] * 200), "outputs", ref)
    by_kl = compare_profiles(ref, cur, thresholds={"categorical": "kl_div"})
    assert row(by_kl, "predicted_class")["method"] == "kl_div"
    assert row(by_kl, "predicted_class")["effect_size"] > 0.5
    assert by_kl["status"] == "alert"
    assert compare_profiles(ref, cur)["status"] == "alert"  # by the default JS distance too


@pytest.mark.parametrize("modality,data", [
    ("tabular", pd.DataFrame({"x": np.arange(100.0), "c": list("ab") * 50})),
    ("text", ["the cat sat", "a dog ran off", "the end"]),
    ("vision", np.random.default_rng(2).random((30, 3, 8, 8))),
    ("outputs", {"predictions": [0, 1, 1, 2], "confidences": [0.9, 0.8, 0.7, 0.6]}),
])
def test_identical_profiles_give_js_zero_and_ok(modality, data):
    p = profile(data, modality)
    report = compare_profiles(p, p)
    assert report["drift_scores"] and all(v == 0.0 for v in report["drift_scores"].values())
    assert report["max_drift"] == 0.0
    assert report["status"] == "ok" and report["n_drifted"] == 0


def test_token_topk_overlap_below_half_is_drift():
    rng = np.random.default_rng(3)
    common = ["the", "a", "is", "of", "and", "to", "in", "it", "that", "was"]
    pandemic = ["covid", "pandemic", "vaccine", "lockdown", "mask", "virus", "cases", "test",
                "quarantine", "booster"]

    def docs(words):
        return [" ".join(rng.choice(words, 12)) for _ in range(300)]

    ref = profile(docs(common), "text")
    report = compare_profiles(ref, profile(docs(pandemic), "text", ref))
    tokens = row(report, "tokens")
    assert tokens["overlap"] < 0.5
    assert tokens["drifted"] and tokens["severity"] == "alert"
    assert tokens["oov_share"] == 1.0


# --- the verdict rule ------------------------------------------------------------------

def test_modalities_must_match():
    with pytest.raises(ValueError, match="cannot compare"):
        compare_profiles(profile(["a"], "text"), profile([0, 1], "outputs"))


def _check_rule(report, alpha=0.05):
    for r in report["features"]:
        expected = (r["p_value_adjusted"] is not None and r["p_value_adjusted"] <= alpha
                    and r["effect_size"] >= r["threshold"])
        assert r["drifted"] == expected
        assert r["severity"] == ("ok" if not expected else
                                 "alert" if r["effect_size"] > r["alert_threshold"] else "warn")


def test_a_huge_window_does_not_alert_on_a_trivial_shift():
    rng = np.random.default_rng(4)
    ref = profile(pd.DataFrame({"x": rng.normal(0, 1, 20_000)}))
    cur = profile(pd.DataFrame({"x": rng.normal(0.05, 1, 400_000)}), reference=ref)
    report = compare_profiles(ref, cur)
    x = row(report, "x")
    assert x["significant"] and x["p_value"] < 1e-3  # real, but only 0.05 SD
    assert not x["drifted"] and report["status"] == "ok"
    _check_rule(report)


def test_a_tiny_window_does_not_alert_on_noise():
    rng = np.random.default_rng(5)
    ref = profile(pd.DataFrame({f"x{i}": rng.normal(0, 1, 5000) for i in range(10)}))
    cur = profile(pd.DataFrame({f"x{i}": rng.normal(0, 1, 15) for i in range(10)}), reference=ref)
    report = compare_profiles(ref, cur)
    assert max(r["effect_size_raw"] for r in report["features"]) > 0.236  # noise looks big at n=15
    assert report["n_drifted"] == 0
    _check_rule(report)


def test_a_real_shift_is_caught_with_severity_from_its_size():
    rng = np.random.default_rng(6)
    ref = profile(pd.DataFrame({"small": rng.normal(0, 1, 10_000), "large": rng.normal(0, 1, 10_000),
                                "same": rng.normal(0, 1, 10_000)}))
    cur = profile(pd.DataFrame({"small": rng.normal(0.33, 1, 5000), "large": rng.normal(1.0, 1, 5000),
                                "same": rng.normal(0, 1, 5000)}), reference=ref)
    report = compare_profiles(ref, cur)
    assert row(report, "small")["severity"] == "warn"
    assert row(report, "large")["severity"] == "alert"
    assert row(report, "same")["severity"] == "ok"
    assert report["status"] == "alert"
    assert (report["n_features"], report["n_drifted"]) == (3, 2)
    assert report["drift_share"] == pytest.approx(2 / 3)
    assert row(report, "large")["cur_mean"] == pytest.approx(1.0, abs=0.05)
    assert report["summary"].startswith("drift alert on 2 of 3 features: large")
    large = row(report, "large")  # each number named by its unit: the method's effect and the JS yardstick
    assert f"large: {large['method']} {fmt_sig(large['effect_size'])}, JS {fmt_sig(large['js'])}" in report["summary"]
    _check_rule(report)


def test_holm_and_benjamini_hochberg_corrections():
    rng = np.random.default_rng(7)
    cols = {f"x{i}": rng.normal(0, 1, 3000) for i in range(20)}
    ref = profile(pd.DataFrame(cols))
    cur_cols = {f"x{i}": rng.normal(0.12 if i < 8 else 0.0, 1, 3000) for i in range(20)}
    cur = profile(pd.DataFrame(cur_cols), reference=ref)
    loose = {"numeric": 0.0}
    holm = compare_profiles(ref, cur, thresholds=loose)
    bh = compare_profiles(ref, cur, thresholds=loose, correction="bh")
    for h, b in zip(holm["features"], bh["features"]):
        assert b["p_value_adjusted"] <= h["p_value_adjusted"] + 1e-15
    assert bh["n_drifted"] >= holm["n_drifted"]
    _check_rule(holm)
    _check_rule(bh)
    with pytest.raises(ValueError, match="correction"):
        compare_profiles(ref, cur, correction="bonferroni")
    with pytest.raises(ValueError, match="alpha"):
        compare_profiles(ref, cur, alpha=1.5)


# --- methods and thresholds -------------------------------------------------------------

def test_methods_are_selectable_per_kind_and_per_feature():
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(0, 1, 2000), "c": rng.choice(list("xyz"), 2000)})
    ref = profile(df)
    cur = profile(df.assign(a=df["a"] + 1), reference=ref)
    report = compare_profiles(ref, cur, thresholds={
        "numeric": "psi", "b": {"method": "ks", "threshold": 0.5}, "categorical": "chisquare"})
    assert row(report, "a")["method"] == "psi" and row(report, "a")["threshold"] == 0.056
    assert row(report, "b")["method"] == "ks" and row(report, "b")["threshold"] == 0.5
    assert row(report, "c")["method"] == "chisquare" and row(report, "c")["test"].startswith("chi2")
    default = compare_profiles(ref, cur)
    assert row(default, "a")["method"] == "wasserstein" and row(default, "a")["test"] == "ks"
    assert row(default, "a")["effect_size"] == pytest.approx(1.0, abs=0.05)
    assert row(compare_profiles(ref, cur, thresholds={"a": 2.0}), "a")["drifted"] is False


@pytest.mark.parametrize("bad,message", [
    ({"numeric": "nope"}, "unknown drift method"),
    ({"numeric": "token_topk"}, "does not apply"),
    ({"numeric": {"threshold": 0.3, "alert": 0.1}}, "threshold <= alert"),
    ({"numeric": {"limit": 1}}, "unknown keys"),
    ({"numeric": [1]}, "method name"),
])
def test_bad_threshold_options_raise(bad, message):
    p = profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    with pytest.raises(ValueError, match=message):
        compare_profiles(p, p, thresholds=bad)


# --- bad input ---------------------------------------------------------------------------

def test_constant_columns_drift_only_when_the_other_side_differs():
    ref = profile(pd.DataFrame({"same": [5.0] * 500, "moved": [5.0] * 500, "spread": [5.0] * 500}))
    cur = profile(pd.DataFrame({"same": [5.0] * 300, "moved": [6.0] * 300,
                                "spread": np.linspace(0, 10, 300)}), reference=ref)
    report = compare_profiles(ref, cur)
    assert row(report, "same")["effect_size"] == 0.0 and not row(report, "same")["drifted"]
    assert row(report, "moved")["drifted"] and row(report, "moved")["js_raw"] == 1.0
    assert row(report, "spread")["drifted"]
    json.dumps(report, allow_nan=False)


def test_nan_and_inf_are_reported_not_fatal():
    rng = np.random.default_rng(9)
    ref = profile(pd.DataFrame({"x": rng.normal(0, 1, 1000), "y": rng.normal(0, 1, 1000)}))
    x = rng.normal(0, 1, 500)
    x[:150] = np.nan
    x[150:160] = np.inf
    cur = profile(pd.DataFrame({"x": x, "y": [np.nan] * 500}), reference=ref)
    report = compare_profiles(ref, cur)
    kinds = {(f["type"], f["feature"]) for f in report["quality"]}
    assert ("missing_values", "x") in kinds and ("non_finite", "x") in kinds
    assert ("no_values", "y") in kinds
    # infinite values are counted apart from missing ones
    assert row(report, "x")["missing_share_cur"] == pytest.approx(0.30)
    assert row(report, "x")["infinite_share_cur"] == pytest.approx(0.02)
    assert row(report, "y")["p_value"] is None and not row(report, "y")["drifted"]
    json.dumps(report, allow_nan=False)


def test_unseen_categories_are_reported_and_count_toward_drift():
    ref = profile(pd.DataFrame({"c": ["a", "b", "c"] * 300}))
    few = profile(pd.DataFrame({"c": ["a", "b", "c"] * 300 + ["new"] * 3}), reference=ref)
    many = profile(pd.DataFrame({"c": ["a", "b", "c"] * 100 + ["new"] * 300}), reference=ref)
    r_few, r_many = compare_profiles(ref, few), compare_profiles(ref, many)
    assert row(r_few, "c")["new_category_share"] == pytest.approx(3 / 903)
    assert row(r_few, "c")["new_categories"] == ["new"]
    assert not row(r_few, "c")["drifted"]
    assert row(r_many, "c")["new_category_share"] == pytest.approx(0.5)
    assert row(r_many, "c")["drifted"]
    assert any(f["type"] == "new_categories" and f["severity"] == "warn" for f in r_many["quality"])


def test_missing_and_extra_columns_are_schema_findings():
    rng = np.random.default_rng(10)
    ref = profile(pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "k": ["x"] * 200}))
    cur = profile(pd.DataFrame({"a": rng.normal(size=100), "extra": rng.normal(size=100),
                                "k": rng.normal(size=100)}), reference=ref)
    report = compare_profiles(ref, cur)
    found = {(f["type"], f["feature"]) for f in report["schema"]}
    assert {("missing_column", "b"), ("extra_column", "extra"), ("dtype_changed", "k")} <= found
    assert [r["name"] for r in report["features"]] == ["a", "k"]


def test_profiles_binned_separately_still_compare():
    rng = np.random.default_rng(11)
    ref = profile(pd.DataFrame({"x": rng.normal(0, 1, 5000)}))
    same = profile(pd.DataFrame({"x": rng.normal(0, 1, 5000)}))  # its own edges
    moved = profile(pd.DataFrame({"x": rng.normal(0.8, 1, 5000)}))
    assert compare_profiles(ref, same)["status"] == "ok"
    assert row(compare_profiles(ref, moved), "x")["severity"] == "alert"


def test_reports_are_json_safe_deterministic_and_accept_stored_profiles():
    rng = np.random.default_rng(12)
    df = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b", "rare"], 300, p=[.6, .39, .01])})
    ref = profile(df)
    cur = profile(df.sample(60, random_state=1), reference=ref)
    a = compare_profiles(ref.to_dict(), json.loads(json.dumps(cur.to_dict())), seed=3)
    b = compare_profiles(ref, cur, seed=3)
    assert json.dumps(a, allow_nan=False) == json.dumps(b, allow_nan=False)
    for key in ("drift_scores", "status", "max_drift", "features", "n_features", "n_drifted",
                "drift_share", "schema", "quality"):
        assert key in a
    for field in ("name", "method", "statistic", "p_value", "effect_size", "threshold", "drifted", "severity"):
        assert field in a["features"][0]


def _traffic_times(rng, day: str, n: int, peak_hour: float = 14.0) -> pd.Series:
    """Request times of one day, a fifth spread over the day, the rest around ``peak_hour``."""
    hours = np.where(rng.random(n) < 0.2, rng.uniform(0, 24, n), rng.normal(peak_hour, 3.0, n) % 24)
    return pd.Series(pd.Timestamp(day) + pd.to_timedelta(hours * 3600, unit="s"))


def test_a_time_column_drifts_by_hour_of_day_not_by_date():
    rng = np.random.default_rng(21)
    days = pd.date_range("2026-01-01", periods=28, freq="D")
    ref_times = pd.concat([_traffic_times(rng, d, 100) for d in days], ignore_index=True)
    ref = profile(pd.DataFrame({"t": ref_times, "x": rng.normal(0, 1, ref_times.size)}))
    assert ref.features["t"].kind == "datetime"
    later = pd.DataFrame({"t": _traffic_times(rng, "2026-05-06", 300), "x": rng.normal(0, 1, 300)})
    report = compare_profiles(ref, profile(later, reference=ref))
    assert report["status"] == "ok", report["summary"]  # four months on, same daily rhythm
    assert row(report, "t")["compared_on"] == "hour_of_day"
    night = later.assign(t=_traffic_times(rng, "2026-05-06", 300, peak_hour=3.0))
    report = compare_profiles(ref, profile(night, reference=ref))
    assert row(report, "t")["drifted"] and row(report, "t")["severity"] == "alert"
    json.dumps(report, allow_nan=False)


def test_an_intraday_window_is_compared_on_the_hours_it_covers():
    rng = np.random.default_rng(22)
    days = pd.date_range("2026-01-01", periods=28, freq="D")
    ref_times = pd.concat([_traffic_times(rng, d, 100) for d in days], ignore_index=True)
    ref = profile(pd.DataFrame({"t": ref_times}))
    morning = _traffic_times(rng, "2026-03-02", 400)
    morning = morning[morning.dt.hour < 12]  # the 6-hourly run at noon sees the morning only
    report = compare_profiles(ref, profile(pd.DataFrame({"t": morning}), reference=ref))
    assert not row(report, "t")["drifted"], row(report, "t")
    assert row(report, "t")["compared_on"].startswith("hours ")


def test_extreme_magnitudes_stay_finite_and_a_move_to_them_is_an_alert():
    """As found: +-1e308 overflowed the second moment, the profile was not JSON-safe,
    and a window moved entirely to 1e308 read effect 0, status ok."""
    rng = np.random.default_rng(23)
    base = rng.normal(0, 1, 1000) * 1e307
    base[:5] = [1e308, -1e308, 1.7e308, -1.7e308, 0.0]
    ref = profile(pd.DataFrame({"x": base}))
    assert np.isfinite(ref.features["x"].moments.std) and ref.features["x"].moments.std > 1e306
    json.dumps(ref.to_dict(), allow_nan=False)
    same = profile(pd.DataFrame({"x": rng.normal(0, 1, 500) * 1e307}), reference=ref)
    assert compare_profiles(ref, same)["status"] == "ok"
    moved = profile(pd.DataFrame({"x": np.full(500, 1.7e308)}), reference=ref)
    report = compare_profiles(ref, moved)
    assert report["status"] == "alert" and row(report, "x")["drifted"]
    json.dumps(report, allow_nan=False)
    merged = merge_profiles(same, moved)
    assert np.isfinite(merged.features["x"].moments.std)
    json.dumps(merged.to_dict(), allow_nan=False)
    small = profile(pd.DataFrame({"x": rng.normal(0, 1, 1000)}))
    huge = profile(pd.DataFrame({"x": np.full(200, 1e308)}), reference=small)
    report = compare_profiles(small, huge)
    assert report["status"] == "alert"
    json.dumps(report, allow_nan=False)


def test_numbers_turned_to_text_and_unsupported_values_are_schema_warnings():
    rng = np.random.default_rng(24)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 300), "y": rng.normal(0, 1, 300)})
    ref = profile(frame)
    text = frame.assign(x=frame["x"].map(lambda v: f"{v:.4f}"), y=[{"v": 1}] * 300)
    report = compare_profiles(ref, profile(text, reference=ref))
    schema = {(f["type"], f["feature"]): f["severity"] for f in report["schema"]}
    assert schema[("dtype_changed", "x")] == "warn"
    assert schema[("unsupported_type", "y")] == "warn"
    assert report["status"] == "warn"  # the values still parse and did not move
    assert not row(report, "x")["drifted"]
    both = profile(frame.assign(y=[{"v": 2}] * 300))  # a column that never had values to compare
    schema = {(f["type"], f["feature"]): f["severity"] for f in compare_profiles(both, both)["schema"]}
    assert schema == {("unsupported_type", "y"): "info"}
