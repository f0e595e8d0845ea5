"""Tier 5 on real trained checkpoints: a CNN on digits (vision) and a token model on
tweets (text), written and registered as the closed loop does. A checkpoint loads only
when the registry records it with its sha256, under the models folder."""

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest

from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.lib.settings import MODELS_ENV
from monitoring_pipeline.lib.tasks import profile_data
from monitoring_pipeline.lib.tier5 import run_tier5
from monitoring_pipeline.models import CheckpointError, read_card, save_checkpoint, train
from monitoring_pipeline.storage import open_warehouse, registry

from .test_tier5 import config


def checkpoint(root, task, kind, version, rows=None, **params):
    dataset = bundled(task)
    frame = dataset.reference if rows is None else dataset.reference.iloc[:rows]
    model = train(kind, profile_data(dataset, frame), frame["label"].astype(str).to_numpy(), seed=0, **params)
    directory = root / task / version
    save_checkpoint(model, directory, {"model_name": task, "version": version})
    return str(directory)


def register(wh, path):
    card = read_card(path)
    registry.register_model(wh, card["model_name"], card["version"], "challenger", framework=card["framework"],
                            path=path, metrics={}, weights_sha256=card["weights_sha256"])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"root": str(root), "cnn": checkpoint(root, "digits", "image_cnn", "v1"),
            "weak_cnn": checkpoint(root, "digits", "image_cnn", "v2", rows=60, epochs=2),
            "text": checkpoint(root, "trump_tweets", "text_classifier", "v1"),
            "tabular": checkpoint(root, "breast_cancer", "logistic_regression", "v1")}


@pytest.fixture
def wh(tmp_path, checkpoints, monkeypatch, warehouse_target):
    """A warehouse whose registry records every checkpoint, with the models folder they are in."""
    monkeypatch.setenv(MODELS_ENV, checkpoints["root"])
    wh = open_warehouse(warehouse_target)
    for name, path in checkpoints.items():
        if name != "root":
            register(wh, path)
    return wh


def test_a_vision_checkpoint_is_evaluated_and_a_weaker_one_fails(wh, checkpoints):
    good = run_tier5(wh, config(candidate={"kind": "checkpoint", "path": checkpoints["cnn"]}))
    assert good["status"] == "ok" and good["candidate_version"] == "digits:v1"
    assert good["eval_metrics"]["accuracy"] > 0.95
    weak = run_tier5(wh, config(baseline_run_id=good["run_id"],
                                candidate={"kind": "checkpoint", "path": checkpoints["weak_cnn"]}))
    assert weak["status"] == "fail" and weak["comparison"]["status"] == "regressed"
    assert weak["comparison"]["baseline_version"] == "digits:v1" and weak["candidate_version"] == "digits:v2"


def test_a_text_checkpoint_is_evaluated_against_itself_and_a_reference(wh, checkpoints):
    cfg = dict(task_name="trump_tweets", modality="text", candidate={"kind": "checkpoint", "path": checkpoints["text"]})
    first = run_tier5(wh, config(**cfg))
    assert first["eval_metrics"]["accuracy"] > 0.5 and first["eval_metrics"]["roc_auc"] > 0.6
    again = run_tier5(wh, config(**cfg, baseline_run_id=first["run_id"],
                                 reference_profile_id=first["profile_artifact_id"]))
    assert again["comparison"]["status"] == "unchanged" and again["drift"]["status"] == "ok"
    assert again["status"] == "ok"


@pytest.mark.parametrize("damage,cause", [("missing", "unreadable weights"),
                                           ("truncated", "sha256 differs from the model registry's record")])
def test_a_broken_checkpoint_is_a_clear_error(tmp_path, checkpoints, monkeypatch, damage, cause, warehouse_target):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    copy = tmp_path / "models" / "digits" / "v1"
    shutil.copytree(checkpoints["cnn"], copy)
    wh = open_warehouse(warehouse_target)
    register(wh, str(copy))
    weights = copy / "model.pt"
    if damage == "missing":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=f"model not loaded: .*{cause}"):
        run_tier5(wh, config(candidate={"kind": "checkpoint", "path": str(copy)}))


def test_a_scikit_learn_checkpoint_is_evaluated(wh, checkpoints):
    result = run_tier5(wh, config(task_name="breast_cancer", modality="tabular",
                                  candidate={"kind": "checkpoint", "path": checkpoints["tabular"]}))
    assert result["candidate_version"] == "breast_cancer:v1" and result["eval_metrics"]["accuracy"] > 0.9


class CreatesMarker:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def plant(directory: Path, marker: Path) -> None:
    """A pickle that creates ``marker`` when read, with a card that agrees with it."""
    payload = pickle.dumps(CreatesMarker(marker))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.pkl").write_bytes(payload)
    (directory / "model_card.json").write_text(json.dumps({
        "model_name": "breast_cancer", "version": "v1", "kind": "logistic_regression", "classes": ["0", "1"],
        "params": {}, "weights_file": "model.pkl", "weights_sha256": hashlib.sha256(payload).hexdigest()}))


def runs(wh) -> int:
    return int(wh.read("SELECT count(*) AS n FROM runs")["n"][0])


def test_a_checkpoint_anywhere_on_disk_is_refused_before_it_is_read(wh, tmp_path, checkpoints):
    planted = tmp_path / "downloads" / "model"
    plant(planted, tmp_path / "marker")
    cfg = config(task_name="breast_cancer", modality="tabular", candidate={"kind": "checkpoint", "path": str(planted)})
    with pytest.raises(CheckpointError) as info:
        run_tier5(wh, cfg)
    message = str(info.value)
    assert str(planted) in message and f"the models folder {Path(checkpoints['root']).resolve()}" in message
    assert not (tmp_path / "marker").exists() and runs(wh) == 0


def test_a_dotdot_path_out_of_the_models_folder_is_refused(wh, tmp_path, checkpoints):
    plant(tmp_path / "elsewhere", tmp_path / "marker")
    path = f"{checkpoints['root']}/breast_cancer/../../{tmp_path.name}/elsewhere"
    with pytest.raises(CheckpointError, match=f"resolves to {tmp_path / 'elsewhere'}, outside the folders"):
        run_tier5(wh, config(task_name="breast_cancer", modality="tabular",
                             candidate={"kind": "checkpoint", "path": path}))
    assert not (tmp_path / "marker").exists()


def test_a_registered_pickle_replaced_with_its_card_is_refused_unread(tmp_path, checkpoints, monkeypatch,
                                                                      warehouse_target):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    copy = tmp_path / "models" / "breast_cancer" / "v1"
    shutil.copytree(checkpoints["tabular"], copy)
    wh = open_warehouse(warehouse_target)
    register(wh, str(copy))
    plant(copy, tmp_path / "marker")  # both files rewritten: the card's hash agrees, the registry's does not
    with pytest.raises(CheckpointError, match=r"model\.pkl: sha256 differs from the model registry's record"):
        run_tier5(wh, config(task_name="breast_cancer", modality="tabular",
                             candidate={"kind": "checkpoint", "path": str(copy)}))
    assert not (tmp_path / "marker").exists() and runs(wh) == 0


def test_the_registry_records_the_hash_and_a_version_without_one_does_not_load(tmp_path, checkpoints, monkeypatch,
                                                                               warehouse_target):
    monkeypatch.setenv(MODELS_ENV, checkpoints["root"])
    wh = open_warehouse(warehouse_target)
    card = read_card(checkpoints["tabular"])
    registry.register_model(wh, "breast_cancer", "v1", "challenger", framework="sklearn",
                            path=checkpoints["tabular"], metrics={})  # as a version registered before hashes
    assert registry.recorded_checkpoints(wh) == {checkpoints["tabular"]: None}
    cfg = config(task_name="breast_cancer", modality="tabular",
                 candidate={"kind": "checkpoint", "path": checkpoints["tabular"]})
    with pytest.raises(CheckpointError, match="records no sha256 for it"):
        run_tier5(wh, cfg)
    registry.record_weights_sha256(wh, "breast_cancer", "v1", card["weights_sha256"])
    assert registry.recorded_checkpoints(wh) == {checkpoints["tabular"]: card["weights_sha256"]}
    with pytest.raises(ValueError, match="already records sha256"):
        registry.record_weights_sha256(wh, "breast_cancer", "v1", "0" * 64)
    assert run_tier5(wh, cfg)["eval_metrics"]["accuracy"] > 0.9
