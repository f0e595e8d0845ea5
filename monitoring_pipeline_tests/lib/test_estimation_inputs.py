"""Both sides of a label-free estimate: every version's reference keeps a labeled calibration
sample of outputs on rows it did not train on, and a window's inputs are built the same way."""

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core.modalities import tokenize
from monitoring_pipeline.core.text_embedding import hashed_embedding
from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.demo.models import make_estimator, model_inputs
from monitoring_pipeline.lib import loop
from monitoring_pipeline.lib.estimation_inputs import (SAMPLE_ROWS, binary_scores, calibration_sample, current_inputs,
                                                       estimation_features, positive_scores, window_sample)
from monitoring_pipeline.lib.model_views import load_version
from monitoring_pipeline.lib.monitors import Monitor, Source, parse_monitors
from monitoring_pipeline.lib.references import build_reference, load_reference, window_reference
from monitoring_pipeline.lib.sources import model_inputs_of, served_rows, typed_features
from monitoring_pipeline.models import text_embedder
from monitoring_pipeline.models.views import model_views
from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.traffic import read_log_window

DAY = pd.Timestamp("2026-01-01")


def served_monitor(name, **overrides):
    entry = {"name": name, "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"},
             "traffic": {"source": "warehouse", "rows_per_day": 60}, "model": {"kind": "logistic_regression"},
             **overrides}
    return parse_monitors({"start_date": "2026-01-01", "monitors": [entry]}).monitors[0]


def holdout_split(m):
    """The rows ensure_champion trains v1 on and holds out (its seeded 80/20 split of the reference)."""
    frame = bundled(m.reference.dataset).reference
    order = np.random.default_rng(m.model.seed).permutation(len(frame))
    cut = int(len(frame) * 0.8)
    return frame.iloc[np.sort(order[:cut])].reset_index(drop=True), frame.iloc[np.sort(order[cut:])].reset_index(
        drop=True)


def serve_one_day(wh, m, version):
    rows, time_of_day = loop.traffic_day(m, 0)
    loop.serve_day(wh, m, rows, DAY + time_of_day, label_delay=timedelta(hours=1), prefix=f"{m.name}-0")
    window = read_log_window(wh, m.name, DAY.to_pydatetime(), (DAY + pd.Timedelta(days=1)).to_pydatetime())
    return served_rows(window, m), replace(m, champion=version)


@pytest.fixture(scope="module")
def tabular(tmp_path_factory, module_targets):
    """v1 of a served logistic regression on breast cancer, and one served day of 60 rows."""
    root = tmp_path_factory.mktemp("tabular")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MONITORING_MODELS", str(root / "models"))
        wh, m = open_warehouse(module_targets("tabular")), served_monitor("bc")
        window, m = serve_one_day(wh, m, loop.ensure_champion(wh, m))
        yield wh, m, window


@pytest.fixture(scope="module")
def digits(tmp_path_factory, module_targets):
    """v1 of a small digits CNN (4 epochs), and one served day of 60 real images."""
    root = tmp_path_factory.mktemp("digits")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MONITORING_MODELS", str(root / "models"))
        wh = open_warehouse(module_targets("digits"))
        m = served_monitor("digits", modality="vision", input_column="image",
                           reference={"source": "bundled", "dataset": "digits"},
                           model={"kind": "image_cnn", "params": {"epochs": 4}})
        window, m = serve_one_day(wh, m, loop.ensure_champion(wh, m))
        yield wh, m, window, root


# --- the sample of a reference built from the monitor's data ----------------------------

def test_a_bundled_reference_keeps_its_out_of_fold_probabilities_and_inputs():
    m = Monitor(name="bc", modality="tabular", reference=Source("bundled", dataset="breast_cancer"),
                champion="logistic_regression")
    ref = build_reference(m)
    sample = ref.calibration
    assert sample["source"] == "out of fold" and sample["classes"] == ["0", "1"]
    n = len(bundled("breast_cancer").reference)
    assert sample["n_rows"] == n and sample["n_dropped"] == 0 and sample["y_score"].shape == (n,)
    accuracy = float(np.mean(sample["y_true"] == sample["y_pred"]))
    assert accuracy == pytest.approx(ref.metrics["accuracy"]) and accuracy < 1.0
    assert ((sample["y_score"] > 0.5) == (sample["y_pred"] == "1")).all()  # the score is P("1")
    # out of fold: not the probabilities of the model fitted on every reference row
    frame = bundled("breast_cancer").reference
    in_sample = make_estimator("tabular", "logistic_regression").fit(model_inputs(bundled("breast_cancer"), frame),
                                                                      frame["label"]).predict_proba(
        model_inputs(bundled("breast_cancer"), frame))[:, 1]
    assert np.abs(in_sample - sample["y_score"]).max() > 0.05
    X = sample["X"]
    assert isinstance(X, pd.DataFrame) and list(X.columns) == bundled("breast_cancer").features
    assert np.allclose(X.to_numpy(), frame[bundled("breast_cancer").features].to_numpy())
    assert ref.outputs.features.keys() == {"predicted_class", "confidence"}  # the profile is as before


def test_a_bundled_multiclass_reference_keeps_the_probability_matrix_and_pooled_pixels():
    m = Monitor(name="dg", modality="vision", reference=Source("bundled", dataset="digits"), input_column="image",
                champion="logistic_regression")
    ref = build_reference(m)
    sample = ref.calibration
    n = len(bundled("digits").reference)
    assert sample["classes"] == [str(d) for d in range(10)] and sample["y_score"].shape == (n, 10)
    assert np.allclose(sample["y_score"].sum(axis=1), 1.0)
    assert (np.array(sample["classes"])[sample["y_score"].argmax(axis=1)] == sample["y_pred"]).all()
    assert float(np.mean(sample["y_true"] == sample["y_pred"])) == pytest.approx(ref.metrics["accuracy"])
    assert sample["X"].shape == (n, 64)  # 8x8 digits pool to themselves


def write_reference(tmp_path, frame, name="ref.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def file_monitor(path, **overrides):
    return Monitor(name="f", modality="tabular", reference=Source("file", path=path),
                   features={"x": "numeric", "colour": "categorical"}, **overrides)


def test_a_binary_file_reference_rebuilds_positive_probabilities_from_prediction_and_confidence(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 5.0], "colour": ["red", None, "blue", "red", "blue"],
                          "label": ["dog", "cat", "dog", "cat", "dog"],
                          "prediction": ["dog", "cat", "cat", "dog", "dog"],
                          "confidence": [0.9, 0.8, 0.6, np.nan, 0.7]})
    sample = build_reference(file_monitor(write_reference(tmp_path, frame))).calibration
    assert sample["classes"] == ["cat", "dog"] and sample["source"] == "reference file"
    assert sample["n_dropped"] == 1 and sample["n_rows"] == 4  # the row without a confidence
    assert sample["y_score"] == pytest.approx([0.9, 0.2, 0.4, 0.7])  # P(dog)
    assert list(sample["y_true"]) == ["dog", "cat", "dog", "dog"]
    X = sample["X"]
    assert X["x"].tolist()[:2] == [1.0, 2.0] and np.isnan(X["x"][2]) and X["colour"].tolist() == ["red", None,
                                                                                                   "blue", "blue"]


def test_a_multiclass_file_reference_has_only_its_confidences(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["a", "b", "c"], "label": [0, 1, 2],
                          "prediction": [0, 1, 1], "confidence": [0.5, 0.7, 0.4]})
    sample = build_reference(file_monitor(write_reference(tmp_path, frame))).calibration
    assert "y_score" not in sample and sample["confidence"] == pytest.approx([0.5, 0.7, 0.4])
    assert list(sample["y_pred"]) == ["0", "1", "1"]


def test_a_file_reference_without_predictions_or_confidences_has_no_sample(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0], "colour": ["a", "b"], "label": [0, 1]})
    assert build_reference(file_monitor(write_reference(tmp_path, frame))).calibration is None
    frame["prediction"] = [0, 0]
    assert build_reference(file_monitor(write_reference(tmp_path, frame, "p.csv"))).calibration is None


def test_a_regression_file_reference_keeps_numbers(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["a", "b", "c"], "label": [1.5, 2.5, np.nan],
                          "prediction": [1.0, 3.0, 2.0]})
    sample = build_reference(file_monitor(write_reference(tmp_path, frame), task="regression")).calibration
    assert sample["task"] == "regression" and sample["n_dropped"] == 1
    assert sample["y_true"].tolist() == [1.5, 2.5] and sample["y_pred"].tolist() == [1.0, 3.0]


# --- the sample's rules ---------------------------------------------------------------

def test_a_sample_holds_at_most_5000_rows_a_seeded_subset_and_builds_inputs_for_those_only():
    rng = np.random.default_rng(1)
    n = 12_000
    y = rng.integers(0, 2, n).astype(str)
    score = rng.uniform(size=n)
    score[:7] = np.nan  # unusable rows are dropped before the draw
    asked = []

    def features(positions):
        asked.append(positions)
        return np.c_[positions, positions].astype(float)

    sample = calibration_sample(y, y, y_score=score, classes=["0", "1"], X=features)
    assert sample["n_rows"] == SAMPLE_ROWS == 5_000 and sample["n_available"] == n - 7 and sample["n_dropped"] == 7
    kept = sample["X"][:, 0].astype(int)
    assert len(asked) == 1 and len(asked[0]) == SAMPLE_ROWS and (np.diff(kept) > 0).all() and kept.min() >= 7
    assert sample["y_score"] == pytest.approx(score[kept])
    again = calibration_sample(y, y, y_score=score, classes=["0", "1"], X=features)
    assert (again["X"] == sample["X"]).all()  # seeded
    other = calibration_sample(y, y, y_score=score, classes=["0", "1"], X=features, seed=1)
    assert not (other["X"] == sample["X"]).all()


def test_bad_samples_are_refused_with_a_sentence():
    with pytest.raises(ValueError, match="needs y_score .* or confidence"):
        calibration_sample(["a"], ["a"])
    with pytest.raises(ValueError, match=r"must be probabilities in \[0, 1\]"):
        calibration_sample(["a"], ["a"], confidence=[87.5])
    with pytest.raises(ValueError, match="y_score needs classes"):
        calibration_sample(["a"], ["a"], y_score=[0.4])
    with pytest.raises(ValueError, match="does not fit 2 classes"):
        calibration_sample(["a"], ["a"], y_score=[[0.2, 0.3, 0.5]], classes=["a", "b"])
    with pytest.raises(ValueError, match="y_true has 2 rows; y_pred has 1"):
        calibration_sample(["a", "b"], ["a"], confidence=[0.5])
    with pytest.raises(ValueError, match="X has 2 rows; y_pred has 1"):
        calibration_sample(["a"], ["a"], confidence=[0.5], X=np.zeros((2, 3)))
    assert calibration_sample([None], ["a"], confidence=[0.5]) is None  # no labeled row


def test_positive_scores_follow_the_rule_the_metrics_used():
    assert positive_scores(["0", "1"], np.array(["1", "0"], dtype=object), [0.9, 0.8]) == pytest.approx([0.9, 0.2])
    assert positive_scores(["a", "b", "c"], ["a", "b"], [0.9, 0.8]) is None  # not binary
    assert positive_scores(["0", "1"], ["1", "0"], [0.9, None]) is None  # a score is missing
    assert binary_scores(["1", "2", None], [0.9, 0.9, 0.9], ["0", "1"]) == pytest.approx([0.9, np.nan, np.nan],
                                                                                        nan_ok=True)


# --- the sample of a served version: its holdout, never its training rows ------------------

def test_a_served_version_keeps_its_holdout_sample_never_its_training_rows(tabular):
    wh, m, _ = tabular
    sample = load_reference(wh, m).calibration
    training, holdout = holdout_split(m)
    assert sample["source"] == "holdout" and sample["n_rows"] == len(holdout) == 80
    features = bundled("breast_cancer").features
    rows = {tuple(r) for r in sample["X"][features].to_numpy().round(6)}
    assert rows == {tuple(r) for r in holdout[features].to_numpy().round(6)}
    assert not rows & {tuple(r) for r in training[features].to_numpy().round(6)}
    assert list(sample["y_true"]) == [str(v) for v in holdout["label"]]
    assert float(np.mean(sample["y_true"] == sample["y_pred"])) == pytest.approx(load_reference(wh, m)
                                                                                  .metrics["accuracy"])


def test_a_served_cnn_keeps_its_holdout_probabilities_and_embeddings(digits, monkeypatch):
    wh, m, _, root = digits
    monkeypatch.setenv("MONITORING_MODELS", str(root / "models"))
    ref = load_reference(wh, m)
    sample = ref.calibration
    _, holdout = holdout_split(m)
    assert sample["source"] == "holdout" and sample["n_rows"] == len(holdout) == 252
    views = model_views(load_version(wh, m.name, "v1"), model_inputs_of(m, holdout, ["image"]))
    assert list(sample["y_true"]) == [str(v) for v in holdout["label"]]
    assert sample["classes"] == [str(d) for d in range(10)]
    assert np.allclose(sample["y_score"], views.probabilities)
    assert sample["X"].shape == views.embeddings.shape
    assert np.allclose(sample["X"], views.embeddings, rtol=1e-6, atol=1e-6)  # stored float32-rounded
    accuracy = float(np.mean(sample["y_true"] == sample["y_pred"]))
    assert accuracy == pytest.approx(ref.metrics["accuracy"]) and accuracy < 1.0


def test_a_version_promoted_on_validation_days_keeps_their_sample(tmp_path, monkeypatch, tabular, module_targets):
    _, _, window = tabular
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    wh, m = open_warehouse(module_targets("promoted")), served_monitor("bc")  # tabular's backend
    version = loop.ensure_champion(wh, m)
    validation = window.iloc[::2].reset_index(drop=True)  # labeled days the challenger was judged on
    basis = loop.adopt_reference(wh, m, version, load_version(wh, m.name, version), validation,
                                 bundled("breast_cancer").features, window="2026-01-01")
    sample = load_reference(wh, replace(m, champion=version)).calibration
    assert basis == "validation" and sample["source"] == "validation"
    assert sample["n_rows"] == len(validation) == 30
    assert list(sample["y_true"]) == validation["label"].tolist()
    assert np.allclose(sample["X"].to_numpy(), validation[bundled("breast_cancer").features].to_numpy())


# --- a window's inputs ----------------------------------------------------------------

def test_a_binary_window_gets_positive_scores_from_its_confidences_and_the_samples_columns(tabular):
    wh, m, window = tabular
    window = window.copy()
    window.loc[[3, 7], "confidence"] = np.nan  # logged without a confidence
    window.loc[11, "prediction"] = None
    other = window.iloc[:5].assign(model_version="v9", request_id=lambda f: f["request_id"] + "-shadow")
    current = current_inputs(wh, m, pd.concat([window, other], ignore_index=True))
    assert current["n_dropped"] == 3 and current["n_rows"] == 57  # v9's rows are not the champion's
    kept = window.drop(index=[3, 7, 11])
    assert current["classes"] == ["0", "1"]
    expected = np.where(kept["prediction"] == "1", kept["confidence"], 1 - kept["confidence"])
    assert current["y_score"] == pytest.approx(expected)
    assert list(current["y_pred"]) == kept["prediction"].tolist()
    sample_X = load_reference(wh, m).calibration["X"]
    assert list(current["X"].columns) == list(sample_X.columns)
    assert (current["X"].dtypes == sample_X.dtypes).all()
    assert np.allclose(current["X"].to_numpy(), typed_features(m, kept, list(sample_X.columns)).to_numpy())
    assert "y_true" not in current and "missing_features" not in current


def test_a_window_missing_a_feature_has_it_missing_and_named(tabular):
    wh, m, window = tabular
    current = current_inputs(wh, m, window.drop(columns=["mean radius"]))
    assert current["missing_features"] == ["mean radius"] and current["X"]["mean radius"].isna().all()


def test_a_window_with_no_usable_row_has_no_inputs(tabular):
    wh, m, window = tabular
    assert current_inputs(wh, m, window.assign(confidence=np.nan)) is None
    assert current_inputs(wh, m, window.iloc[:0]) is None


def test_a_served_cnn_window_carries_its_probabilities_classes_and_embeddings(digits, monkeypatch):
    wh, m, window, root = digits
    monkeypatch.setenv("MONITORING_MODELS", str(root / "models"))
    current = current_inputs(wh, m, window)
    views = model_views(load_version(wh, m.name, "v1"), model_inputs_of(m, window, ["image"]))
    assert current["n_rows"] == 60 and current["classes"] == [str(d) for d in range(10)]
    assert current["y_score"].shape == (60, 10) and np.allclose(current["y_score"], views.probabilities)
    assert current["X"].shape[1] == load_reference(wh, m).calibration["X"].shape[1]
    assert np.allclose(current["X"], views.embeddings)
    assert list(current["y_pred"]) == window["prediction"].tolist()
    assert (np.array(current["classes"])[current["y_score"].argmax(axis=1)] == current["y_pred"]).all()


def test_a_first_window_reference_keeps_its_labeled_rows_as_its_sample(tabular):
    wh, m, window = tabular
    window = window.assign(label=window["label"].where(window.index % 3 > 0))  # a third not labeled yet
    labeled = window["label"].notna()
    ref = window_reference(wh, m, window, list(load_reference(wh, m).inputs.features))
    assert ref.calibration["source"] == "first window" and ref.calibration["n_rows"] == labeled.sum()
    assert list(ref.calibration["y_true"]) == window.loc[labeled, "label"].tolist()
    assert window_sample(wh, m, window.assign(label=None), ["mean radius"]) is None


def text_monitor(**overrides):
    return Monitor(name="tt", modality="text", input_column="text",
                   reference=Source("bundled", dataset="trump_tweets"), champion="logistic_regression", **overrides)


def test_a_text_window_is_embedded_as_its_reference_was():
    m = text_monitor()
    ref = build_reference(m)
    assert ref.calibration["classes"] == ["android", "iphone"] and ref.calibration["X"].shape[1] == 256
    texts = ["Make America great again!", None, "Thank you Iowa", "so sad"]
    served = pd.DataFrame({"text": texts, "prediction": ["iphone", "android", "android", "iphone"],
                           "confidence": [0.8, 0.7, np.nan, 0.6], "model_version": "logistic_regression",
                           "label": None})
    current = current_inputs(None, m, served, reference=ref)
    assert current["n_rows"] == 3 and current["n_dropped"] == 1
    assert current["y_score"] == pytest.approx([0.8, 0.3, 0.6])  # P(iphone)
    kept = [texts[i] for i in (0, 1, 3)]
    expected = hashed_embedding([None if t is None else tokenize(t) for t in kept])
    assert np.allclose(current["X"], expected, equal_nan=True) and np.isnan(current["X"][1]).all()


@pytest.mark.skipif(not text_embedder.available(), reason="the embeddings extra is not installed")
def test_with_minilm_a_text_window_has_the_sentence_embeddings():
    m = text_monitor(embedder="minilm")
    frame = pd.DataFrame({"text": ["Thank you Iowa", "so sad"]})
    X = estimation_features(m, frame, ["text"])
    assert X.shape == (2, text_embedder.DIMENSIONS)
    assert np.allclose(X, text_embedder.sentence_embeddings(["Thank you Iowa", "so sad"]))
