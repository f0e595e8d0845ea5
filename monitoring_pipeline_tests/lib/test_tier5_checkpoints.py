"""Tier 5 on real trained checkpoints: a CNN on digits (vision) and a token model on
tweets (text), written and read as the closed loop does."""

import pytest

from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.lib.tasks import profile_data
from monitoring_pipeline.lib.tier5 import run_tier5
from monitoring_pipeline.models import CheckpointError, save_checkpoint, train
from monitoring_pipeline.storage import Warehouse

from .test_tier5 import config


def checkpoint(root, task, kind, version, rows=None, **params):
    dataset = bundled(task)
    frame = dataset.reference if rows is None else dataset.reference.iloc[:rows]
    model = train(kind, profile_data(dataset, frame), frame["label"].astype(str).to_numpy(), seed=0, **params)
    directory = root / task / version
    save_checkpoint(model, directory, {"model_name": task, "version": version})
    return str(directory)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"cnn": checkpoint(root, "digits", "image_cnn", "v1"),
            "weak_cnn": checkpoint(root, "digits", "image_cnn", "v2", rows=60, epochs=2),
            "text": checkpoint(root, "trump_tweets", "text_classifier", "v1")}


def test_a_vision_checkpoint_is_evaluated_and_a_weaker_one_fails(tmp_path, checkpoints):
    wh = Warehouse(tmp_path / "w.duckdb")
    good = run_tier5(wh, config(candidate={"kind": "checkpoint", "path": checkpoints["cnn"]}))
    assert good["status"] == "ok" and good["candidate_version"] == "digits:v1"
    assert good["eval_metrics"]["accuracy"] > 0.95
    weak = run_tier5(wh, config(baseline_run_id=good["run_id"],
                                candidate={"kind": "checkpoint", "path": checkpoints["weak_cnn"]}))
    assert weak["status"] == "fail" and weak["comparison"]["status"] == "regressed"
    assert weak["comparison"]["baseline_version"] == "digits:v1" and weak["candidate_version"] == "digits:v2"


def test_a_text_checkpoint_is_evaluated_against_itself_and_a_reference(tmp_path, checkpoints):
    wh = Warehouse(tmp_path / "w.duckdb")
    cfg = dict(task_name="trump_tweets", modality="text", candidate={"kind": "checkpoint", "path": checkpoints["text"]})
    first = run_tier5(wh, config(**cfg))
    assert first["eval_metrics"]["accuracy"] > 0.5 and first["eval_metrics"]["roc_auc"] > 0.6
    again = run_tier5(wh, config(**cfg, baseline_run_id=first["run_id"],
                                 reference_profile_id=first["profile_artifact_id"]))
    assert again["comparison"]["status"] == "unchanged" and again["drift"]["status"] == "ok"
    assert again["status"] == "ok"


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_broken_checkpoint_is_a_clear_error(tmp_path, checkpoints, damage):
    import shutil
    from pathlib import Path

    copy = tmp_path / "cnn"
    shutil.copytree(checkpoints["cnn"], copy)
    weights = Path(copy) / "model.pt"
    if damage == "missing":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model not loaded"):
        run_tier5(Warehouse(tmp_path / "w.duckdb"), config(candidate={"kind": "checkpoint", "path": str(copy)}))
