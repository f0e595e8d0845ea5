"""The digits CNN's own views in its profiles: the reference and each served window carry the
class probabilities (BBSD) recomputed with the checkpoint of the version that served them."""

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core import compare_profiles
from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.lib import loop
from monitoring_pipeline.lib.model_views import has_views, load_version
from monitoring_pipeline.lib.monitors import parse_monitors
from monitoring_pipeline.lib.references import load_reference, window_profiles
from monitoring_pipeline.lib.sources import model_inputs_of, served_rows
from monitoring_pipeline.models.views import model_views
from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.traffic import read_log_window

PROBABILITIES = {f"probability_{d}" for d in range(10)}


def digits_monitor(**model):
    entry = {"name": "digits", "modality": "vision", "input_column": "image", "task": "classification",
             "reference": {"source": "bundled", "dataset": "digits"},
             "traffic": {"source": "warehouse", "rows_per_day": 60},
             "model": {"kind": "image_cnn", "params": {"epochs": 4}, **model}}
    return parse_monitors({"start_date": "2026-01-01", "monitors": [entry]}).monitors[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory, module_targets):
    """v1 of a small digits CNN, and one served day of 60 real images."""
    root = tmp_path_factory.mktemp("views")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MONITORING_MODELS", str(root / "models"))
        wh, m = open_warehouse(module_targets("views")), digits_monitor()
        version = loop.ensure_champion(wh, m)
        rows, time_of_day = loop.traffic_day(m, 0)
        day = pd.Timestamp("2026-01-01")
        loop.serve_day(wh, m, rows, day + time_of_day, label_delay=timedelta(hours=1), prefix="d0")
        window = served_rows(read_log_window(wh, m.name, day.to_pydatetime(), (day + pd.Timedelta(days=1))
                                             .to_pydatetime()), m)
        m = replace(m, champion=version)
        yield wh, m, window, root


def test_only_a_served_torch_net_on_images_is_asked_again():
    assert has_views(digits_monitor())
    tabular = parse_monitors({"start_date": "2026-01-01", "monitors": [{
        "name": "t", "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"},
        "traffic": {"source": "warehouse"}, "model": {"kind": "logistic_regression"}}]}).monitors[0]
    assert not has_views(tabular)
    assert not has_views(digits_monitor(kind="random_forest"))


def test_the_reference_and_a_window_carry_the_class_probabilities(served, monkeypatch):
    wh, m, window, root = served
    monkeypatch.setenv("MONITORING_MODELS", str(root / "models"))
    ref = load_reference(wh, m)
    assert PROBABILITIES <= set(ref.outputs.features)
    assert ref.outputs.features["probability_3"].bounds == (0.0, 1.0)
    inputs, outputs = window_profiles(wh, m, window, ["image"], ref)
    assert inputs.n_rows == outputs.n_rows == len(window) == 60
    assert PROBABILITIES <= set(outputs.features)
    # recomputed from the logged images with v1's checkpoint: the served confidences come back
    logged = window["confidence"].to_numpy()
    recomputed = outputs.features["confidence"].moments
    assert recomputed.mean == pytest.approx(logged.mean(), abs=1e-6)
    assert recomputed.min == pytest.approx(logged.min(), abs=1e-6)
    predicted = dict(outputs.features["predicted_class"].counts)
    assert predicted == window["prediction"].astype(str).value_counts().to_dict()
    for name in PROBABILITIES:  # binned on the reference's edges
        assert outputs.features[name].edges == ref.outputs.features[name].edges
    report = compare_profiles(ref.outputs, outputs)
    tested = {r["name"]: r for r in report["features"]}
    assert all(tested[name]["test"] == "ks" for name in PROBABILITIES)
    assert report["n_features"] == 12


def test_a_window_served_by_a_version_the_registry_lacks_is_refused(served, monkeypatch):
    wh, m, window, root = served
    monkeypatch.setenv("MONITORING_MODELS", str(root / "models"))
    with pytest.raises(ValueError, match="no registered checkpoint of version 'v9'"):
        load_version(wh, m.name, "v9")


def test_the_penultimate_view_separates_digits_of_the_window(served, monkeypatch):
    """The embeddings the inputs profile gets are the CNN's: nearest class centroid on them
    (centroids from the reference images) labels the served images about as well as the CNN."""
    wh, m, window, root = served
    monkeypatch.setenv("MONITORING_MODELS", str(root / "models"))
    model = load_version(wh, m.name, m.champion)
    ref = bundled("digits").reference
    ref_views = model_views(model, model_inputs_of(m, ref, ["image"]).astype(np.float64))
    cur_views = model_views(model, model_inputs_of(m, window, ["image"]).astype(np.float64))
    labels = ref["label"].astype(str).to_numpy()
    classes = np.unique(labels)
    centroids = np.stack([ref_views.embeddings[labels == c].mean(axis=0) for c in classes])
    nearest = classes[((cur_views.embeddings[:, None] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)]
    assert np.mean(nearest == window["label"].astype(str).to_numpy()) > 0.8
