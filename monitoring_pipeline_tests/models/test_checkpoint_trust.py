"""Which checkpoints load: only registered ones, from the models folder or a directory the
registry records, whose weights still have the sha256 the registry recorded. A pickle
that runs code when read (it creates a marker file) must never be unpickled."""

import hashlib
import io
import json
import os
import pickle

import numpy as np
import pytest
import torch

from monitoring_pipeline.models import CheckpointError, load_checkpoint, read_card, save_checkpoint
from monitoring_pipeline.models.checkpoints import CARD_FILE

from .conftest import DATASET_OF


class CreatesMarker:
    """Unpickling this creates the file at ``path``: code execution a loader must not allow."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def hostile_sklearn(directory, marker):
    """A checkpoint whose card is consistent with its pickle, which creates ``marker``."""
    payload = pickle.dumps(CreatesMarker(marker))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.pkl").write_bytes(payload)
    card = {"kind": "random_forest", "classes": [0, 1], "params": {}, "weights_file": "model.pkl",
            "weights_sha256": hashlib.sha256(payload).hexdigest()}
    (directory / CARD_FILE).write_text(json.dumps(card))
    return card["weights_sha256"]


@pytest.fixture
def models(tmp_path):
    return tmp_path / "models"


@pytest.fixture
def good(trained, models):
    """A scikit-learn checkpoint under the models folder and the registry's record of it."""
    directory = models / "m" / "v1"
    save_checkpoint(trained("random_forest"), directory, {"model_name": "m", "version": "v1"})
    return directory, {str(directory): read_card(directory)["weights_sha256"]}


def test_the_hostile_pickle_really_runs_code_when_unpickled(tmp_path):
    # the control that makes "the marker does not exist" below mean something
    hostile_sklearn(tmp_path / "probe", tmp_path / "probe-marker")
    pickle.loads((tmp_path / "probe" / "model.pkl").read_bytes()).close()
    assert (tmp_path / "probe-marker").exists()


def test_a_registered_checkpoint_loads(good, trained, datasets):
    directory, registered = good
    model, card = load_checkpoint(directory, registered=registered, models_root=directory.parents[1])
    X = datasets[DATASET_OF["random_forest"]].X_test
    np.testing.assert_array_equal(model.predict_proba(X), trained("random_forest").predict_proba(X))
    assert card["framework"] == "sklearn"


def test_a_checkpoint_outside_the_models_folder_is_refused_unread(tmp_path, models):
    models.mkdir()
    elsewhere = tmp_path / "downloads" / "model"
    hostile_sklearn(elsewhere, tmp_path / "marker")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(elsewhere, registered={}, models_root=models)
    message = str(info.value)
    assert str(elsewhere) in message and f"the models folder {models}" in message
    assert "outside the folders checkpoints load from" in message
    assert not (tmp_path / "marker").exists()


def test_an_unregistered_checkpoint_under_the_models_folder_is_refused_unread(tmp_path, models, good):
    directory, registered = good
    planted = models / "m" / "v2"
    hostile_sklearn(planted, tmp_path / "marker")
    with pytest.raises(CheckpointError, match="is not in the model registry; .*register it") as info:
        load_checkpoint(planted, registered=registered, models_root=models)
    assert str(planted) in str(info.value)
    assert not (tmp_path / "marker").exists()


def test_weights_replaced_after_registration_are_refused_unread(tmp_path, models, good):
    directory, registered = good
    # the attacker rewrites the pickle and the card beside it, so the card's hash agrees
    hostile_sklearn(directory, tmp_path / "marker")
    with pytest.raises(CheckpointError, match=r"model\.pkl: sha256 differs from the model registry's record"):
        load_checkpoint(directory, registered=registered, models_root=models)
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("how", ["dotdot", "symlink"])
def test_a_path_that_escapes_the_models_folder_is_refused(tmp_path, models, good, how):
    directory, registered = good
    outside = tmp_path / "outside"
    hostile_sklearn(outside, tmp_path / "marker")
    if how == "dotdot":
        path = models / "m" / ".." / ".." / "outside"
    else:
        path = models / "m" / "link"
        os.symlink(outside, path)
    with pytest.raises(CheckpointError, match=f"resolves to {outside}, outside the folders"):
        load_checkpoint(path, registered=registered, models_root=models)
    assert not (tmp_path / "marker").exists()


def test_a_directory_the_registry_records_loads_outside_the_models_folder(tmp_path, trained):
    directory = tmp_path / "shared" / "m" / "v1"
    save_checkpoint(trained("logistic_regression"), directory, {"model_name": "m"})
    registered = {str(directory): read_card(directory)["weights_sha256"]}
    model, _ = load_checkpoint(directory, registered=registered, models_root=tmp_path / "models")
    assert model.kind == "logistic_regression"
    (directory / "model.pkl").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="sha256 differs from the model registry's record"):
        load_checkpoint(directory, registered=registered, models_root=tmp_path / "models")


def test_a_registry_row_without_a_hash_does_not_load(good, models):
    directory, _ = good
    with pytest.raises(CheckpointError, match="records no sha256"):
        load_checkpoint(directory, registered={str(directory): None}, models_root=models)


def test_torch_weights_holding_an_object_are_refused_even_when_registered(tmp_path, models):
    buffer = io.BytesIO()
    torch.save({"format": 1, "state_dict": {}, "config": CreatesMarker(tmp_path / "marker"), "preprocessing": {}},
               buffer)
    payload = buffer.getvalue()
    torch.load(io.BytesIO(payload), weights_only=False)  # the control: a full unpickle runs the code
    assert (tmp_path / "marker").exists()
    (tmp_path / "marker").unlink()
    directory = models / "m" / "v1"
    directory.mkdir(parents=True)
    (directory / "model.pt").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    card = {"kind": "tabular_mlp", "classes": [0, 1], "params": {}, "weights_file": "model.pt",
            "weights_sha256": sha}
    (directory / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="cannot deserialize the weights") as info:
        load_checkpoint(directory, registered={str(directory): sha}, models_root=models)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert not (tmp_path / "marker").exists()


def test_a_card_whose_kind_disagrees_with_its_weights_file_is_refused(good, models):
    directory, registered = good
    card = json.loads((directory / CARD_FILE).read_text())
    (directory / CARD_FILE).write_text(json.dumps({**card, "kind": "tabular_mlp"}))
    with pytest.raises(CheckpointError, match="tabular_mlp checkpoint's weights are model.pt, not 'model.pkl'"):
        load_checkpoint(directory, registered=registered, models_root=models)


def test_a_version_registered_before_hashes_loads_again_once_a_person_trusts_it(good, tmp_path, monkeypatch,
                                                                               capsys):
    """The upgrade path: `monitoring-pipeline models trust` records the hash of an old
    registration (checked against its own card); a damaged file is not made loadable."""
    from monitoring_pipeline.cli import main
    from monitoring_pipeline.storage import Warehouse
    from monitoring_pipeline.storage.registry import recorded_checkpoints, register_model

    directory, _ = good
    wh = Warehouse(tmp_path / "warehouse.duckdb")
    register_model(wh, "m", "v1", "champion", framework="sklearn", path=str(directory), metrics={})
    with pytest.raises(CheckpointError, match="models trust m v1|models trust <model> <version>"):
        load_checkpoint(directory, registered=recorded_checkpoints(wh), models_root=directory.parents[1])
    monkeypatch.setenv("MONITORING_WAREHOUSE", str(wh.path))
    assert main(["models", "trust", "m", "v1"]) == 0
    assert "recorded sha256" in capsys.readouterr().out
    load_checkpoint(directory, registered=recorded_checkpoints(wh), models_root=directory.parents[1])
    assert main(["models", "trust", "m", "v1"]) == 1  # once: a recorded hash is never replaced
    assert "already records" in capsys.readouterr().err

    damaged = directory.parent / "v2"
    save_checkpoint(load_checkpoint(directory, registered=recorded_checkpoints(wh),
                                    models_root=directory.parents[1])[0], damaged, {"model_name": "m"})
    register_model(wh, "m", "v2", "challenger", framework="sklearn", path=str(damaged), metrics={})
    (damaged / "model.pkl").write_bytes(b"not the bytes the card names")
    assert main(["models", "trust", "m", "v2"]) == 1
    err = capsys.readouterr().err
    assert "differs from its model card" in err and len(err.strip().splitlines()) == 1
    assert recorded_checkpoints(wh)[str(damaged)] is None
    assert main(["models", "trust", "m", "v9"]) == 1
    assert "no registered version 'v9'" in capsys.readouterr().err
