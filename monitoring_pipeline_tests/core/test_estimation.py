"""Label-free performance estimation: calibrated CBPE, PAPE, DLE and their reliability."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, mean_absolute_error, roc_auc_score
from sklearn.model_selection import train_test_split

from monitoring_pipeline.core.calibration import calibration_error, fit_calibrator, select_calibrator
from monitoring_pipeline.core.density_ratio import estimate_support
from monitoring_pipeline.core.estimation import estimate_performance
from monitoring_pipeline.demo.drift import inject


def binary_world(n: int, rng, sharpen: float = 1.0):
    """Scores whose truth is known: y ~ Bernoulli(sigmoid(z)); the model reports sigmoid(sharpen z)."""
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return y, 1 / (1 + np.exp(-sharpen * z))


def side(y, s, labeled=True):
    out = {"y_pred": (s >= 0.5).astype(int), "y_score": s}
    return {**out, "y_true": y} if labeled else out


def test_interval_covers_the_realized_accuracy_on_iid_windows():
    covered, f1_covered, auc_covered, errors = 0, 0, 0, []
    for i in range(200):
        rng = np.random.default_rng(10_000 + i)
        reference = side(*binary_world(500, rng))
        y, s = binary_world(100, rng)
        result = estimate_performance(reference, side(y, s, labeled=False), seed=i, n_boot=100)
        pred = (s >= 0.5).astype(int)
        realized = (pred == y).mean()
        a = result["accuracy"]
        covered += a["low"] <= realized <= a["high"]
        f1_covered += result["f1_macro"]["low"] <= f1_score(y, pred, average="macro") <= result["f1_macro"]["high"]
        auc_covered += result["roc_auc"]["low"] <= roc_auc_score(y, s) <= result["roc_auc"]["high"]
        errors.append(a["estimate"] - realized)
        assert result["reliable"] and a["reliable"] and a["reason"] == ""
    assert covered >= 180, covered
    assert f1_covered >= 180 and auc_covered >= 180, (f1_covered, auc_covered)
    assert abs(np.mean(errors)) < 0.01  # unbiased: the windows' errors average out


def test_a_sharpened_model_is_estimated_after_calibration():
    rng = np.random.default_rng(1)
    reference = side(*binary_world(2000, rng, sharpen=4.0))
    y, s = binary_world(2000, rng, sharpen=4.0)
    realized = ((s >= 0.5).astype(int) == y).mean()
    raw = np.maximum(s, 1 - s).mean()
    result = estimate_performance(reference, side(y, s, labeled=False))
    assert raw - realized > 0.1  # the raw mean confidence is far too high
    assert abs(result["accuracy"]["estimate"] - realized) <= 0.03
    calibration = result["calibration"]
    assert calibration["method"] in ("isotonic", "platt")
    assert calibration["ece_before"] > 0.1 and calibration["ece_after"] < calibration["ece_before"] / 3


def test_calibration_is_left_alone_when_it_does_not_help():
    """Well-calibrated scores on many rows: no calibrator beats them by much, and whichever is
    chosen, the estimate stays where the truth is."""
    rng = np.random.default_rng(2)
    s = rng.uniform(0, 1, 20_000)
    o = (rng.random(s.size) < s).astype(float)
    kind, errors = select_calibrator([(s, o)])
    assert errors["none"] < 0.02 and errors[kind] <= errors["none"]
    assert calibration_error(fit_calibrator(kind, s, o)(s), o) < 0.02


def test_platt_recovers_a_known_distortion():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, 50_000)
    o = (rng.random(z.size) < 1 / (1 + np.exp(-(0.5 + 0.5 * z)))).astype(float)
    cal = fit_calibrator("platt", 1 / (1 + np.exp(-z)), o)
    assert cal.params == pytest.approx((0.5, 0.5), abs=0.05)


def test_the_isotonic_fit_is_scikit_learns():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(13)
    s = np.round(rng.random(800), 2)  # ties, as real scores have
    o, w = (rng.random(s.size) < s).astype(float), rng.random(s.size)
    expected = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(s, o, sample_weight=w)
    grid = np.linspace(0, 1, 301)
    assert np.allclose(fit_calibrator("isotonic", s, o, w)(grid), expected.predict(grid), atol=1e-12)


def covariate_world(n: int, shift: float, rng):
    """P(y | x) fixed; the model sees only x1, so its calibration depends on where x2 lies."""
    x = rng.normal(0, 1, (n, 2))
    x[:, 1] += shift
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x[:, 0] + 1.5 * x[:, 1])))).astype(int)
    return x, y


def test_pape_follows_covariate_shift_where_cbpe_does_not():
    rng = np.random.default_rng(4)
    x, y = covariate_world(6000, 0.0, rng)
    model = LogisticRegression().fit(x[:1000, :1], y[:1000])
    held, y_held = x[1000:], y[1000:]
    reference = {"y_true": y_held, "y_pred": model.predict(held[:, :1]),
                 "y_score": model.predict_proba(held[:, :1])[:, 1], "X": held}
    errors = {"cbpe": [], "pape": []}
    for i in range(6):
        xc, yc = covariate_world(500, 2.0, rng)
        pred = model.predict(xc[:, :1])
        current = {"y_pred": pred, "y_score": model.predict_proba(xc[:, :1])[:, 1], "X": xc}
        for method in errors:
            result = estimate_performance(reference, current, method=method, seed=i, n_boot=100)
            errors[method].append(abs(result["accuracy"]["estimate"] - (pred == yc).mean()))
            assert result["support"]["domain_auc"] > 0.8  # the shift is seen ...
            assert result["reliable"]  # ... and the reference still covers it
    assert np.mean(errors["cbpe"]) > 0.08
    assert np.mean(errors["pape"]) < np.mean(errors["cbpe"]) / 2


@pytest.fixture(scope="module")
def digits_model():
    data = load_digits()
    images, labels = data.images / 16.0, data.target
    train_x, rest_x, train_y, rest_y = train_test_split(images, labels, test_size=0.6, random_state=0)
    cal_x, cur_x, cal_y, cur_y = train_test_split(rest_x, rest_y, test_size=0.5, random_state=1)
    model = LogisticRegression(max_iter=2000, C=0.5).fit(train_x.reshape(len(train_x), -1), train_y)
    proba = model.predict_proba(cal_x.reshape(len(cal_x), -1))
    reference = {"y_true": cal_y, "y_pred": proba.argmax(1), "y_score": proba, "X": cal_x.reshape(len(cal_x), -1),
                 "classes": np.arange(10)}
    return model, reference, cur_x, cur_y


def digits_window(model, images):
    proba = model.predict_proba(images.reshape(len(images), -1))
    return {"y_pred": proba.argmax(1), "y_score": proba, "X": images.reshape(len(images), -1)}


def test_multiclass_estimates_every_metric_on_unshifted_digits(digits_model):
    model, reference, images, labels = digits_model
    current = digits_window(model, images)
    names = ("accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc", "f1_3", "recall_8")
    result = estimate_performance(reference, current, metrics=names, n_boot=100)
    pred = current["y_pred"]
    realized = {"accuracy": (pred == labels).mean(), "f1_macro": f1_score(labels, pred, average="macro"),
                "f1_3": f1_score(labels == 3, pred == 3), "roc_auc": roc_auc_score(labels, current["y_score"],
                                                                                 multi_class="ovr")}
    for name, value in realized.items():
        assert abs(result[name]["estimate"] - value) < 0.05, (name, result[name], value)
    assert result["reliable"] and result["support"]["domain_auc"] < 0.8
    assert all(result[n]["low"] <= result[n]["estimate"] <= result[n]["high"] for n in names)


@pytest.mark.parametrize("degrees", [30, 15])
def test_rotated_digits_are_estimated_or_flagged(digits_model, degrees):
    """Never an estimate above the SLO, trusted, while the realized accuracy is far below it."""
    model, reference, images, labels = digits_model
    rotated = np.stack(inject(pd.DataFrame({"image": list(images)}), "rotation", degrees, image_column="image")["image"])
    current = digits_window(model, rotated)
    realized = (current["y_pred"] == labels).mean()
    assert realized < 0.7
    for method in ("cbpe", "pape"):
        result = estimate_performance(reference, current, method=method, n_boot=50)
        accuracy = result["accuracy"]
        assert abs(accuracy["estimate"] - realized) <= 0.1 or not accuracy["reliable"]
        if not accuracy["reliable"]:
            assert accuracy["reason"].startswith("inputs outside the reference")
            assert result["reason"] == accuracy["reason"] and not result["reliable"]
            # its interval says so too: the rows outside the reference could be anything
            assert result["support"]["unsupported_share"] > 0.5
            assert accuracy["low"] <= realized <= accuracy["high"] and accuracy["high"] - accuracy["low"] > 0.5


def test_top_class_confidence_alone_gives_the_accuracy(digits_model):
    model, reference, images, labels = digits_model
    current = digits_window(model, images)
    ref = {k: v for k, v in reference.items() if k != "y_score"} | {"confidence": reference["y_score"].max(1)}
    cur = {k: v for k, v in current.items() if k != "y_score"} | {"confidence": current["y_score"].max(1)}
    result = estimate_performance(ref, cur, metrics=("accuracy", "f1_macro"), n_boot=50)
    assert abs(result["accuracy"]["estimate"] - (current["y_pred"] == labels).mean()) < 0.05
    assert result["f1_macro"]["estimate"] is None and "top-class confidence" in result["f1_macro"]["reason"]
    assert not result["f1_macro"]["reliable"]


def test_density_ratios_recover_a_known_shift():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 1, (3000, 3)), rng.normal(0, 1, (1000, 3))
    cur[:, 0] += 0.8
    support = estimate_support(ref, cur)
    true_log_ratio = 0.8 * ref[:, 0] - 0.32  # N(0.8, 1) over N(0, 1)
    assert np.corrcoef(np.log(support.weights), true_log_ratio)[0, 1] > 0.95
    null = estimate_support(rng.normal(0, 1, (3000, 3)), rng.normal(0, 1, (300, 3)))
    assert abs(null.domain_auc - 0.5) < 0.06 and null.ess_share > 0.9 and null.problem() == ""


@pytest.mark.parametrize("columns", [33, 256])
def test_many_columns_of_one_law_are_not_mistaken_for_a_shift(columns):
    """Whitening fitted on held-out rows once made any two samples look apart in many columns."""
    rng = np.random.default_rng(columns)
    support = estimate_support(rng.normal(size=(557, columns)), rng.normal(size=(600, columns)))
    assert abs(support.domain_auc - 0.5) < 0.06 and support.ess_share > 0.8 and support.problem() == ""


def test_disjoint_inputs_are_outside_the_support():
    rng = np.random.default_rng(6)
    support = estimate_support(rng.normal(0, 1, (500, 2)), rng.normal(8, 1, (100, 2)))
    assert support.domain_auc > 0.99 and support.problem().startswith("inputs outside the reference")


def test_mixed_frames_with_missing_and_unseen_values_are_encoded():
    rng = np.random.default_rng(7)
    frame = lambda n: pd.DataFrame({"a": rng.normal(0, 1, n), "city": rng.choice(["x", "y", "z"], n)})  # noqa: E731
    ref, cur = frame(400), frame(80)
    cur.loc[:5, "a"] = np.nan
    cur.loc[6:9, "a"] = np.inf
    cur.loc[10:20, "city"] = "never seen"
    y, s = binary_world(400, rng)
    reference = {**side(y, s), "X": ref}
    current = {**side(*binary_world(80, rng), labeled=False), "X": cur.assign(extra=1.0)}  # an extra column is ignored
    result = estimate_performance(reference, current, method="pape", n_boot=50)
    assert np.isfinite(result["support"]["domain_auc"]) and result["accuracy"]["estimate"] is not None
    with pytest.raises(ValueError, match="lack the reference's columns: city"):
        estimate_performance(reference, {**current, "X": cur.drop(columns="city")}, method="pape")


def test_too_small_a_reference_is_unreliable():
    rng = np.random.default_rng(8)
    result = estimate_performance(side(*binary_world(30, rng)), side(*binary_world(100, rng), labeled=False))
    assert not result["reliable"] and "30 labeled reference rows" in result["reason"]
    assert not result["accuracy"]["reliable"]


def test_bad_input_gets_clear_errors():
    rng = np.random.default_rng(9)
    reference = side(*binary_world(200, rng))
    y, s = binary_world(50, rng)
    current = side(y, s, labeled=False)
    with pytest.raises(ValueError, match="no current rows"):
        estimate_performance(reference, {"y_pred": np.array([]), "y_score": np.array([])})
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        estimate_performance(reference, {**current, "y_score": s * 2})
    with pytest.raises(ValueError, match="needs 'y_true'"):
        estimate_performance({k: v for k, v in reference.items() if k != "y_true"}, current)
    with pytest.raises(ValueError, match="cannot estimate 'brier'"):
        estimate_performance(reference, current, metrics=("brier",))
    with pytest.raises(ValueError, match="method must be one of"):
        estimate_performance(reference, current, method="magic")
    with pytest.raises(ValueError, match="'pape' needs the inputs"):
        estimate_performance(reference, current, method="pape")
    with pytest.raises(ValueError, match="not among the classes"):
        estimate_performance(reference, {**current, "y_pred": np.full(50, 7)})
    with pytest.raises(ValueError, match="one length"):
        estimate_performance({**reference, "y_true": reference["y_true"][:-1]}, current)


def test_missing_scores_and_predictions_are_dropped_and_counted():
    rng = np.random.default_rng(10)
    reference = side(*binary_world(300, rng))
    y, s = binary_world(60, rng)
    s = s.copy()
    s[:4] = np.nan
    pred = (np.nan_to_num(s) >= 0.5).astype(int).astype(object)
    pred[4] = None
    result = estimate_performance(reference, {"y_pred": pred, "y_score": s}, n_boot=50)
    assert result["n_dropped"] == 5 and result["n_current"] == 55


def heteroscedastic(n: int, rng, shift: float = 0.0):
    x = rng.normal(0, 1, (n, 2))
    x[:, 1] += shift
    noise = 0.3 + np.abs(x[:, 1])  # the error grows with |x2|
    return x, x[:, 0] + noise * rng.normal(0, 1, n)


def test_dle_estimates_regression_error():
    rng = np.random.default_rng(11)
    x, y = heteroscedastic(2000, rng)
    reference = {"y_true": y, "y_pred": x[:, 0], "X": x}
    covered, errors = 0, []
    for i in range(10):
        xc, yc = heteroscedastic(300, rng, shift=1.0)
        result = estimate_performance(reference, {"y_pred": xc[:, 0], "X": xc}, task="regression", seed=i)
        realized = mean_absolute_error(yc, xc[:, 0])
        covered += result["mae"]["low"] <= realized <= result["mae"]["high"]
        errors.append(abs(result["mae"]["estimate"] - realized))
        assert result["method"] == "dle" and set(result) >= {"mae", "rmse"}
    naive = abs(np.abs(y - x[:, 0]).mean() - realized)  # the reference's own MAE, unaware of the shift
    assert np.mean(errors) < naive / 3
    assert covered >= 8


def test_dle_bad_input():
    rng = np.random.default_rng(12)
    x, y = heteroscedastic(100, rng)
    reference = {"y_true": y, "y_pred": x[:, 0], "X": x}
    with pytest.raises(ValueError, match="no current rows"):
        estimate_performance(reference, {"y_pred": np.array([np.nan]), "X": x[:1]}, task="regression")
    with pytest.raises(ValueError, match="cannot estimate"):
        estimate_performance(reference, {"y_pred": x[:5, 0], "X": x[:5]}, task="regression", metrics=("r2",))
    with pytest.raises(ValueError, match="'pape' needs the inputs"):
        estimate_performance({"y_true": y, "y_pred": x[:, 0]}, {"y_pred": x[:5, 0]}, task="regression",
                             method="pape")
