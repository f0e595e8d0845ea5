import numpy as np
import pytest

from monitoring_pipeline.core.bootstrap import _Scorer
from monitoring_pipeline.core.comparison import compare_models
from monitoring_pipeline.core.metrics import evaluate_predictions


def test_status_per_metric_follows_the_bounds():
    base = {"accuracy": 0.80, "f1_macro": 0.70, "roc_auc": 0.90}
    cand = {"accuracy": 0.74, "f1_macro": 0.72, "roc_auc": 0.905}
    res = compare_models(base, cand)
    assert res["metrics"]["accuracy"]["status"] == "regressed"
    assert res["metrics"]["accuracy"]["delta"] == pytest.approx(-0.06)
    assert res["metrics"]["f1_macro"]["status"] == "improved"
    assert res["metrics"]["roc_auc"]["status"] == "unchanged"
    assert res["status"] == "regressed" and res["regressed"] == ["accuracy"]
    assert res["metric"] == "accuracy" and res["delta"] == pytest.approx(-0.06)
    loose = compare_models(base, cand, regression_tolerance=0.1, improvement_margin={"default": 0.05})
    assert loose["metrics"]["accuracy"]["status"] == "unchanged"
    assert loose["metrics"]["f1_macro"]["status"] == "unchanged"


def test_direction_is_right_for_lower_is_better_and_slope_metrics():
    res = compare_models({"rmse": 1.0, "brier": 0.20, "calibration_slope": 0.9},
                         {"rmse": 1.1, "brier": 0.10, "calibration_slope": 1.05})
    assert res["metrics"]["rmse"]["status"] == "regressed"
    assert res["metrics"]["brier"]["status"] == "improved"
    assert res["metrics"]["calibration_slope"]["status"] == "improved"  # closer to 1
    assert res["metrics"]["rmse"]["direction"] == "lower"


def test_calibration_does_not_gate_by_default():
    res = compare_models({"accuracy": 0.80, "ece": 0.02}, {"accuracy": 0.90, "ece": 0.10})
    assert res["metrics"]["ece"]["status"] == "regressed"
    assert res["status"] == "improved"
    gated = compare_models({"accuracy": 0.80, "ece": 0.02}, {"accuracy": 0.90, "ece": 0.10},
                           gate_metrics=["accuracy", "ece"])
    assert gated["status"] == "regressed"


def test_metric_dict_problems_raise():
    with pytest.raises(ValueError, match="in common"):
        compare_models({"accuracy": 0.8}, {"rmse": 1.0})
    with pytest.raises(ValueError, match="not in both"):
        compare_models({"accuracy": 0.8}, {"accuracy": 0.9}, metrics=["accuracy", "f1_macro"])
    with pytest.raises(ValueError, match=">= 0"):
        compare_models({"accuracy": 0.8}, {"accuracy": 0.9}, regression_tolerance=-1)


def _predictions(rng, y, strength):
    p = np.clip(0.5 + (y - 0.5) * strength + rng.normal(0, 0.25, y.size), 0.001, 0.999)
    return {"y_true": y, "y_pred": (p >= 0.5).astype(int), "y_score": p}


def test_predictions_add_a_paired_bootstrap_interval():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    weak, strong = _predictions(rng, y, 0.3), _predictions(rng, y, 0.6)
    res = compare_models(weak, strong, n_bootstrap=400)
    acc = res["metrics"]["accuracy"]
    assert acc["ci_low"] < acc["delta"] < acc["ci_high"]
    assert acc["significant"] and acc["ci_low"] > 0
    assert res["metrics"]["roc_auc"]["significant"]
    assert res["status"] == "improved"
    same = compare_models(weak, dict(weak), n_bootstrap=200)
    assert same["metrics"]["accuracy"]["ci_low"] == same["metrics"]["accuracy"]["ci_high"] == 0.0
    assert same["metrics"]["accuracy"]["significant"] is False
    assert same["metrics"]["pr_auc"]["ci_low"] is None  # no bootstrap for this metric


def test_bootstrap_scorer_reproduces_the_full_data_metrics():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    pred = _predictions(rng, y, 0.4)
    full = evaluate_predictions(y, pred["y_pred"], y_score=pred["y_score"])
    scorer = _Scorer("classification", y, pred["y_pred"], pred["y_score"], np.array([0, 1]))
    got = scorer.score(np.arange(500)[None, :], scorer.supported())
    for name in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "brier", "roc_auc"):
        assert got[name][0] == pytest.approx(full[name]), name
    ry = rng.normal(size=200)
    rp = ry + rng.normal(0, 0.5, 200)
    reg = _Scorer("regression", ry, rp, None, None).score(np.arange(200)[None, :], {"rmse", "mae", "r2"})
    full_r = evaluate_predictions(ry, rp, task="regression")
    for name in ("rmse", "mae", "r2"):
        assert reg[name][0] == pytest.approx(full_r[name])


def test_multiclass_and_regression_predictions_compare():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 900)
    noisy = np.where(rng.random(900) < 0.3, rng.integers(0, 3, 900), y)
    noisier = np.where(rng.random(900) < 0.6, rng.integers(0, 3, 900), y)
    res = compare_models({"y_true": y, "y_pred": noisy}, {"y_true": y, "y_pred": noisier}, n_bootstrap=300)
    assert res["status"] == "regressed" and res["metrics"]["f1_macro"]["significant"]
    ry = rng.normal(size=400)
    reg = compare_models({"y_true": ry, "y_pred": ry + rng.normal(0, 1, 400), "task": "regression"},
                         {"y_true": ry, "y_pred": ry + rng.normal(0, 0.2, 400), "task": "regression"},
                         n_bootstrap=300)
    assert reg["metric"] == "rmse" and reg["status"] == "improved"
    assert reg["metrics"]["rmse"]["ci_high"] < 0


def test_predictions_must_be_on_the_same_data():
    a = {"y_true": [0, 1, 1], "y_pred": [0, 1, 0]}
    with pytest.raises(ValueError, match="same data"):
        compare_models(a, {"y_true": [1, 1, 1], "y_pred": [0, 1, 0]})
    with pytest.raises(ValueError, match="not one of each"):
        compare_models(a, {"accuracy": 0.5})


def test_a_regression_within_noise_is_not_confirmed():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    champion = np.where(rng.random(60) < 0.95, y, 1 - y)
    candidate = champion.copy()
    candidate[np.flatnonzero(candidate == y)[:4]] ^= 1  # four more mistakes in 60
    res = compare_models({"y_true": y, "y_pred": champion}, {"y_true": y, "y_pred": candidate}, n_bootstrap=500)
    assert res["status"] == "regressed" and res["metrics"]["accuracy"]["delta"] == pytest.approx(-4 / 60)
    assert res["metrics"]["accuracy"]["significant"] is False
    assert res["confirmed"] is False
    big = compare_models({"y_true": np.tile(y, 20), "y_pred": np.tile(champion, 20)},
                         {"y_true": np.tile(y, 20), "y_pred": np.tile(candidate, 20)}, n_bootstrap=300)
    assert big["confirmed"] is True
    assert compare_models({"accuracy": 0.9}, {"accuracy": 0.8})["confirmed"] is True  # no interval to ask


def test_permutation_p_value_of_accuracy_is_the_exact_mcnemar_p():
    from scipy import stats

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 80)
    base = y.copy()
    cand = y.copy()
    base[:3] ^= 1  # 3 examples only the baseline gets wrong
    cand[10:19] ^= 1  # 9 only the candidate gets wrong
    res = compare_models({"y_true": y, "y_pred": base}, {"y_true": y, "y_pred": cand}, n_bootstrap=20_000)
    exact = stats.binomtest(3, 12, 0.5).pvalue  # McNemar's exact test on the 12 discordant pairs
    assert res["metrics"]["accuracy"]["p_value"] == pytest.approx(exact, abs=0.01)
    assert res["metrics"]["accuracy"]["significant"] == bool(exact < 0.05)
