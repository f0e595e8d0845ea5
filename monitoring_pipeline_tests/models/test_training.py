import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

from monitoring_pipeline.models import DEFAULTS, KINDS, data_hash, evaluate, train
from monitoring_pipeline.models.nets import encode_tabular, fit_tabular_encoding, hash_tokens, tokenize

from .conftest import DATASET_OF

TORCH_KINDS = ("text_classifier", "image_cnn", "tabular_mlp")
# A few epochs are enough to show reproducibility; accuracy is tested with the defaults.
QUICK = {"text_classifier": {"epochs": 1}, "image_cnn": {"epochs": 2}, "tabular_mlp": {"epochs": 2},
         "random_forest": {"n_estimators": 10}, "logistic_regression": {}}


def majority_share(y) -> float:
    return float(pd.Series(y).value_counts(normalize=True).iloc[0])


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_beats_the_majority_class_on_held_out_data(kind, trained, datasets):
    split = datasets[DATASET_OF[kind]]
    metrics = evaluate(trained(kind), split.X_test, split.y_test)
    assert metrics["n"] == len(split.y_test)
    assert metrics["accuracy"] > majority_share(split.y_test) + 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_one_seed_gives_identical_predictions(kind, datasets):
    split = datasets[DATASET_OF[kind]]
    first = train(kind, split.X_train, split.y_train, seed=3, **QUICK[kind])
    second = train(kind, split.X_train, split.y_train, seed=3, **QUICK[kind])
    np.testing.assert_array_equal(first.predict_proba(split.X_test), second.predict_proba(split.X_test))


@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_another_seed_gives_other_weights(kind, datasets):
    split = datasets[DATASET_OF[kind]]
    a = train(kind, split.X_train, split.y_train, seed=0, **QUICK[kind]).estimator.state_dict()
    b = train(kind, split.X_train, split.y_train, seed=1, **QUICK[kind]).estimator.state_dict()
    assert a.keys() == b.keys()
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_training_restores_torch_threads_and_random_state(datasets):
    split = datasets["digits"]
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    train("image_cnn", split.X_train[:100], split.y_train[:100], epochs=1)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(3), expected)


def test_string_labels_come_back_as_the_given_labels(trained, datasets):
    split = datasets["tweets"]
    model = trained("text_classifier")
    assert model.classes_.tolist() == ["Twitter for Android", "Twitter for iPhone"]
    proba = model.predict_proba(split.X_test)
    assert proba.shape == (len(split.X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert set(model.predict(split.X_test)) <= set(model.classes_)


def test_binary_scores_are_the_probability_of_the_second_class(trained, datasets):
    split = datasets["tweets"]
    model = trained("text_classifier")
    metrics = evaluate(model, split.X_test, split.y_test)
    positive = split.y_test == "Twitter for iPhone"
    p = model.predict_proba(split.X_test)[:, 1]
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(positive, p))
    assert metrics["brier"] == pytest.approx(skm.brier_score_loss(positive, p))


def test_multiclass_scores_are_the_full_matrix(trained, datasets):
    split = datasets["digits"]
    model = trained("image_cnn")
    metrics = evaluate(model, split.X_test, split.y_test)
    proba = model.predict_proba(split.X_test)
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(split.y_test, proba, multi_class="ovr"))
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(split.y_test, proba.argmax(axis=1)))


@pytest.mark.parametrize("kind", ["tabular_mlp", "random_forest", "logistic_regression"])
def test_tabular_models_cope_with_an_unseen_category_and_missing_values(kind, trained, datasets):
    X = datasets["flights"].X_test.head(20).copy()
    X["distance"] = X["distance"].astype(float)
    X.loc[0, "carrier"] = "ZZ"  # no such carrier in training
    X.loc[1, "dest"] = None
    X.loc[2, "distance"] = np.nan
    X.loc[3, ["hour", "sched_dep_time", "origin"]] = [np.nan, np.nan, None]
    proba = trained(kind).predict_proba(X)
    assert proba.shape == (20, 2) and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_tabular_encoding_standardizes_and_one_hots_over_training_categories():
    train_frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan], "c": ["b", "a", "b", None]})
    encoding = fit_tabular_encoding(train_frame)
    assert encoding["categories"] == [["a", "b"]]
    assert encoding["mean"] == [2.0] and encoding["std"] == pytest.approx([np.std([1.0, 2.0, 3.0])])
    out = encode_tabular(pd.DataFrame({"x": [2.0, np.nan], "c": ["a", "new"]}), encoding).numpy()
    np.testing.assert_array_equal(out, [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_tokens_hash_with_crc32_not_the_salted_builtin():
    assert tokenize("Crooked @Hillary! #MAGA don't") == ["crooked", "@hillary", "#maga", "don't"]
    assert hash_tokens(["maga"], 2**16) == [zlib.crc32(b"maga") % 2**16]


def test_train_refuses_bad_requests(datasets):
    split = datasets["flights"]
    X, y = split.X_train.head(50), split.y_train[:50]
    with pytest.raises(ValueError, match="unknown model kind 'xgboost'"):
        train("xgboost", X, y)
    with pytest.raises(ValueError, match="single class"):
        train("logistic_regression", X, np.zeros(50, dtype=int))
    with pytest.raises(ValueError, match="empty"):
        train("tabular_mlp", X.head(0), y[:0])
    with pytest.raises(ValueError, match="empty"):
        train("text_classifier", [], [])
    with pytest.raises(ValueError, match="must match"):
        train("random_forest", X, y[:49])
    with pytest.raises(ValueError, match="takes a pandas DataFrame"):
        train("random_forest", X.to_numpy(), y)
    with pytest.raises(ValueError, match=r"takes a numeric array \[N, C, H, W\]"):
        train("image_cnn", datasets["digits"].X_train.reshape(1200, 64), datasets["digits"].y_train)
    with pytest.raises(ValueError, match="list of strings"):
        train("text_classifier", "one tweet", ["a"])
    with pytest.raises(ValueError, match="found NoneType None"):
        train("text_classifier", ["a tweet", None], ["x", "y"])
    with pytest.raises(ValueError, match="takes no parameter"):
        train("tabular_mlp", X, y, epoch=3)


def test_predicting_on_no_rows_gives_an_empty_matrix(trained, datasets):
    assert trained("text_classifier").predict_proba([]).shape == (0, 2)
    assert trained("random_forest").predict_proba(datasets["flights"].X_test.head(0)).shape == (0, 2)


def test_images_with_the_wrong_channel_count_are_refused(trained, datasets):
    images = datasets["digits"].X_test
    with pytest.raises(ValueError, match="takes 1 channel"):
        trained("image_cnn").predict_proba(np.concatenate([images, images], axis=1))


def test_params_record_the_defaults_overrides_and_seed(datasets):
    split = datasets["flights"]
    model = train("random_forest", split.X_train.head(200), split.y_train[:200], seed=7, n_estimators=5)
    assert model.params == {**DEFAULTS["random_forest"], "n_estimators": 5, "seed": 7}


def test_data_hash_is_stable_and_sees_every_change(datasets):
    flights, tweets, digits = datasets["flights"], datasets["tweets"], datasets["digits"]
    X, y = flights.X_train, flights.y_train
    assert data_hash(X, y) == data_hash(X.copy(), y.copy())
    flipped = y.copy()
    flipped[0] = 1 - flipped[0]
    assert data_hash(X, flipped) != data_hash(X, y)
    edited = X.copy()
    edited.iloc[5, edited.columns.get_loc("carrier")] = "ZZ"
    assert data_hash(edited, y) != data_hash(X, y)
    assert data_hash(tweets.X_train, tweets.y_train) != data_hash(tweets.X_train[::-1], tweets.y_train)
    assert data_hash(["ab", "c"], [0, 1]) != data_hash(["a", "bc"], [0, 1])
    assert data_hash(digits.X_train, digits.y_train) != data_hash(digits.X_train.reshape(1200, 64), digits.y_train)
    assert len(data_hash(digits.X_train, digits.y_train)) == 64
