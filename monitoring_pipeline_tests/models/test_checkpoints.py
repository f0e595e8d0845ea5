import json
from datetime import datetime, timezone

import numpy as np
import pytest
import torch

from monitoring_pipeline.models import (
    CheckpointError,
    data_hash,
    evaluate,
    load_checkpoint,
    read_card,
    save_checkpoint,
)
from monitoring_pipeline.models.checkpoints import CARD_FILE

from .conftest import DATASET_OF


def save(model, split, directory):
    card = {"model_name": "m", "version": "v1", "training_window": ["2013-01-01", "2013-01-31"],
            "data_hash": data_hash(split.X_train, split.y_train),
            "metrics": evaluate(model, split.X_test, split.y_test)}
    return save_checkpoint(model, directory, card)


def load(directory, sha256):
    """Load as the registry would, with ``sha256`` recorded for ``directory`` under its parent."""
    return load_checkpoint(directory, registered={str(directory): sha256}, models_root=directory.parent)


@pytest.mark.parametrize("kind", ["image_cnn", "text_classifier", "random_forest"])
def test_a_checkpoint_round_trips(kind, trained, datasets, tmp_path):
    split, model = datasets[DATASET_OF[kind]], trained(kind)
    directory = tmp_path / "models" / "m" / "v1"
    assert save(model, split, directory) == directory / CARD_FILE
    loaded, card = load(directory, read_card(directory)["weights_sha256"])
    np.testing.assert_array_equal(loaded.predict_proba(split.X_test), model.predict_proba(split.X_test))
    assert (loaded.predict(split.X_test) == model.predict(split.X_test)).all()
    assert loaded.kind == kind and loaded.params == model.params
    assert sorted(p.name for p in directory.iterdir()) == sorted([CARD_FILE, card["weights_file"]])


def test_the_card_records_metrics_provenance_and_framework(trained, datasets, tmp_path):
    split, model = datasets["tweets"], trained("text_classifier")
    save(model, split, tmp_path)
    card = read_card(tmp_path)
    assert card["model_name"] == "m" and card["version"] == "v1"
    assert card["metrics"]["accuracy"] == evaluate(model, split.X_test, split.y_test)["accuracy"]
    assert card["data_hash"] == data_hash(split.X_train, split.y_train)
    assert card["kind"] == "text_classifier" and card["framework"] == "torch"
    assert card["framework_version"] == torch.__version__
    assert card["classes"] == ["Twitter for Android", "Twitter for iPhone"]
    assert card["params"]["seed"] == 0 and card["weights_file"] == "model.pt"
    created = datetime.fromisoformat(card["created_at"])
    assert created.utcoffset() == timezone.utc.utcoffset(None)
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 3600


def test_torch_weights_load_without_unpickling_objects(trained, datasets, tmp_path):
    save(trained("tabular_mlp"), datasets["flights"], tmp_path)
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert set(saved) == {"format", "state_dict", "config", "preprocessing"}
    assert saved["preprocessing"]["categorical"] == ["carrier", "origin", "dest"]


def test_sklearn_card_names_its_framework(trained, datasets, tmp_path):
    save(trained("logistic_regression"), datasets["flights"], tmp_path)
    card = read_card(tmp_path)
    assert card["framework"] == "sklearn" and card["weights_file"] == "model.pkl" and card["classes"] == [0, 1]


@pytest.fixture
def checkpoint(trained, datasets, tmp_path):
    save(trained("tabular_mlp"), datasets["flights"], tmp_path / "ckpt")
    return tmp_path / "ckpt"


@pytest.fixture
def recorded(checkpoint):
    """The weights' sha256 as the registry records it when the checkpoint is registered."""
    return read_card(checkpoint)["weights_sha256"]


def test_a_truncated_weights_file_is_refused(checkpoint, recorded):
    weights = checkpoint / "model.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"^model not loaded: .*model\.pt: sha256 differs"):
        load(checkpoint, recorded)


def test_a_garbage_card_is_refused(checkpoint, recorded):
    (checkpoint / CARD_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match=r"^model not loaded: .*model_card\.json: unreadable") as info:
        load(checkpoint, recorded)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"^model not loaded: .*nowhere: no such directory"):
        load(tmp_path / "nowhere", "0" * 64)
    with pytest.raises(CheckpointError, match="^model not loaded"):
        read_card(tmp_path / "nowhere")


def test_missing_weights_are_refused(checkpoint, recorded):
    (checkpoint / "model.pt").unlink()
    with pytest.raises(CheckpointError, match=r"^model not loaded: .*model\.pt: unreadable weights"):
        load(checkpoint, recorded)


def test_weights_that_match_the_registry_but_do_not_deserialize_are_refused(checkpoint):
    import hashlib

    garbage = b"not a torch file"
    (checkpoint / "model.pt").write_bytes(garbage)
    card = json.loads((checkpoint / CARD_FILE).read_text())
    card["weights_sha256"] = hashlib.sha256(garbage).hexdigest()
    (checkpoint / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="^model not loaded: .*cannot deserialize") as info:
        load(checkpoint, card["weights_sha256"])
    assert info.value.__cause__ is not None


def test_a_card_cannot_point_outside_its_directory(checkpoint, recorded):
    card = json.loads((checkpoint / CARD_FILE).read_text())
    card["weights_file"] = "../elsewhere.pt"
    (checkpoint / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="not a file name in the directory"):
        load(checkpoint, recorded)


def test_saving_again_replaces_the_checkpoint_and_leaves_no_temporary_files(trained, datasets, checkpoint):
    first = read_card(checkpoint)
    save_checkpoint(trained("tabular_mlp"), checkpoint, {"model_name": "m", "version": "v1", "note": "again",
                                                         "rows": np.int64(4000)})
    card = read_card(checkpoint)
    assert card["note"] == "again" and card["rows"] == 4000
    assert card["weights_sha256"] == first["weights_sha256"]
    assert sorted(p.name for p in checkpoint.iterdir()) == sorted([CARD_FILE, "model.pt"])


def test_a_card_that_is_not_json_is_refused_before_anything_is_written(trained, tmp_path):
    with pytest.raises(ValueError, match="not JSON-serializable"):
        save_checkpoint(trained("tabular_mlp"), tmp_path, {"metrics": {"accuracy": float("nan")}})
    assert list(tmp_path.iterdir()) == []
