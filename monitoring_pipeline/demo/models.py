"""Small scikit-learn models of the bundled data sets, trained on their reference split.

They stand in for served models in the embedded default: seeded, CPU-only, each
fitted in well under a second and cached for the life of the process.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .bundled import BundledDataset, bundled

SEED = 0


def make_estimator(modality: str, name: str):
    """A fresh, unfitted estimator of that name for the modality."""
    if name == "logistic_regression":
        if modality == "text":
            return make_pipeline(TfidfVectorizer(min_df=2, ngram_range=(1, 2)), LogisticRegression(max_iter=2000))
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=SEED))
    if name == "random_forest" and modality != "text":
        return RandomForestClassifier(n_estimators=100, min_samples_leaf=2, random_state=SEED, n_jobs=1)
    raise ValueError(f"no bundled {modality} model named {name!r}; use logistic_regression or random_forest")


def model_inputs(dataset: BundledDataset, frame: pd.DataFrame):
    """What the models take: a feature frame, flattened images, or a list of texts."""
    if dataset.modality == "vision":
        return np.stack(frame[dataset.input_column].to_numpy()).reshape(len(frame), -1).astype(np.float64)
    if dataset.modality == "text":
        return frame[dataset.input_column].astype(str).tolist()
    return frame[dataset.features]


@lru_cache(maxsize=None)
def bundled_model(dataset_name: str, estimator: str, train_rows: int | None = None):
    """``estimator`` fitted on the data set's reference split (its first ``train_rows`` rows)."""
    dataset = bundled(dataset_name)
    train = dataset.reference if train_rows is None else dataset.reference.iloc[:train_rows]
    model = make_estimator(dataset.modality, estimator)
    return model.fit(model_inputs(dataset, train), train["label"].to_numpy())


def predict(model, inputs) -> tuple[np.ndarray, np.ndarray]:
    """Predicted classes and the class-probability matrix (columns in model.classes_ order)."""
    proba = model.predict_proba(inputs)
    return model.classes_[proba.argmax(axis=1)], proba
