import numpy as np
import pytest
from sklearn import metrics as skm

from monitoring_pipeline.core.metrics import (
    calibration_slope,
    evaluate_predictions,
    expected_calibration_error,
)


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 800)
    p = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, 800), 0.001, 0.999)
    return y, (p >= 0.5).astype(int), p


def test_binary_metrics_match_scikit_learn(binary):
    y, pred, p = binary
    m = evaluate_predictions(y, pred, y_score=p)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["recall_macro"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    per = skm.precision_recall_fscore_support(y, pred)
    for i, label in enumerate(["0", "1"]):
        assert m["per_class"][label]["precision"] == pytest.approx(per[0][i])
        assert m["per_class"][label]["recall"] == pytest.approx(per[1][i])
        assert m["per_class"][label]["f1"] == pytest.approx(per[2][i])
        assert m["per_class"][label]["support"] == per[3][i]
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["n"] == 800 and m["notes"] == []


def test_multiclass_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    scores = rng.dirichlet([1, 1, 1], 600)
    scores[np.arange(600), y] += 0.6
    scores /= scores.sum(axis=1, keepdims=True)
    pred = scores.argmax(axis=1)
    m = evaluate_predictions(y, pred, y_score=scores)
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores, multi_class="ovr"))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(np.eye(3)[y], scores))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, scores))
    assert set(m["per_class"]) == {"0", "1", "2"}


def test_string_labels_and_the_greater_label_as_positive():
    y = np.array(["no", "yes", "yes", "no", "yes"])
    p = np.array([0.2, 0.9, 0.6, 0.4, 0.3])
    m = evaluate_predictions(y, np.where(p >= 0.5, "yes", "no"), y_score=p)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "yes", p))


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(2)
    y = rng.normal(size=300)
    pred = y + rng.normal(0, 0.3, 300)
    m = evaluate_predictions(y, pred, task="regression")
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))


def test_expected_calibration_error_by_hand():
    correct = np.array([1, 0, 1, 1], dtype=float)
    confidence = np.array([0.9, 0.9, 0.55, 0.55])
    # bin of 0.9: accuracy 0.5 vs 0.9; bin of 0.55: accuracy 1.0 vs 0.55
    assert expected_calibration_error(correct, confidence) == pytest.approx(0.5 * 0.4 + 0.5 * 0.45)


def test_calibration_slope_is_one_when_calibrated_and_below_when_overconfident():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 20_000)
    y = (rng.random(20_000) < p).astype(float)
    assert calibration_slope(y, p) == pytest.approx(1.0, abs=0.06)
    logit = np.log(p / (1 - p))
    overconfident = 1 / (1 + np.exp(-3 * logit))
    assert calibration_slope(y, overconfident) == pytest.approx(1 / 3, abs=0.03)
    assert calibration_slope(np.ones(5), np.full(5, 0.5)) is None


def test_undefined_metrics_are_none_with_a_reason():
    m = evaluate_predictions([1, 1, 1], [1, 0, 1], y_score=[0.9, 0.4, 0.8])
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert any("one class" in note for note in m["notes"])
    assert m["brier"] is not None


@pytest.mark.parametrize("args,kwargs,message", [
    (([], []), {}, "empty"),
    (([0, 1], [0]), {}, "equal length"),
    (([0, 1], [0, 1]), {"y_score": [0.5]}, "y_score"),
    (([0, 1], [0, 1]), {"y_score": [0.5, np.nan]}, "NaN"),
    (([0, 1, 2], [0, 1, 2]), {"y_score": [0.1, 0.2, 0.3]}, "binary"),
    (([0.0, 1.0], [np.inf, 1.0]), {"task": "regression"}, "finite"),
    (([0, 1], [0, 1]), {"task": "ranking"}, "task"),
])
def test_bad_input_raises(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_predictions(*args, **kwargs)
