import json

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.lib.tier5 import run_tier5
from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.runs import get_run


def config(**overrides):
    cfg = {"task_name": "digits", "modality": "vision", "tier": "5", "baseline_run_id": None,
           "reference_profile_id": None, "eval": {"batch_size": 8},
           "candidate": {"kind": "builtin", "name": "logistic_regression"},
           "regression_tolerance": 0.05, "improvement_margin": 0.01, "sample_size": 1000}
    cfg.update(overrides)
    return cfg


@pytest.fixture
def wh(tmp_path, warehouse_target):
    return open_warehouse(warehouse_target)


def test_eval_only_logs_the_run_and_its_metrics(wh):
    result = run_tier5(wh, config(), "dagster-run-1")
    assert result["status"] == "ok" and result["comparison"] is None and result["drift"] is None
    assert result["eval_metrics"]["accuracy"] > 0.9
    assert result["summary"].startswith("Model accuracy 0.9")
    run = get_run(wh, result["run_id"])
    assert run["run_name"] == "tier5_validation" and run["task_name"] == "digits"
    assert run["config"]["eval"] == {"batch_size": 8} and run["dagster_run_id"] == "dagster-run-1"
    names = set(wh.read("SELECT name FROM artifacts WHERE run_id = ?", [result["run_id"]])["name"])
    assert names == {"eval_predictions", "eval_inputs", "tier5_report"}
    metrics = wh.read("SELECT metric_name FROM ml_performance_metrics WHERE run_id = ?", [result["run_id"]])
    assert {"accuracy", "f1_macro", "roc_auc", "brier", "ece"} <= set(metrics["metric_name"])


def test_a_regressed_candidate_fails_against_its_baseline(wh):
    baseline = run_tier5(wh, config())
    same = run_tier5(wh, config(baseline_run_id=baseline["run_id"]))
    assert same["status"] == "ok" and same["comparison"]["status"] == "unchanged"
    weak = run_tier5(wh, config(baseline_run_id=baseline["run_id"],
                                candidate={"kind": "builtin", "name": "logistic_regression", "train_rows": 40}))
    assert weak["status"] == "fail" and weak["comparison"]["status"] == "regressed"
    assert weak["comparison"]["confirmed"] and weak["comparison"]["metrics"]["accuracy"]["significant"]
    assert weak["summary"].startswith("Candidate regressed accuracy by -")
    assert weak["reasons"][0].startswith("accuracy regressed by")
    stored = wh.read("SELECT DISTINCT verdict, baseline_version, candidate_version FROM model_comparisons "
                     "WHERE run_id = ?", [weak["run_id"]])
    assert stored.values.tolist() == [["regressed", "logistic_regression", "logistic_regression-40rows"]]


def test_drift_against_a_stored_reference_profile(wh):
    first = run_tier5(wh, config())
    again = run_tier5(wh, config(reference_profile_id=first["profile_artifact_id"]))
    assert again["drift"]["status"] == "ok" and again["status"] == "ok"
    assert again["summary"].endswith("no severe drift detected")
    assert int(wh.read("SELECT count(*) AS n FROM ml_drift_history WHERE run_id = ?",
                       [again["run_id"]])["n"][0]) == again["drift"]["n_features"]
    text = run_tier5(wh, config(task_name="trump_tweets", modality="text"))
    with pytest.raises(ValueError, match="is text, the task is vision"):
        run_tier5(wh, config(reference_profile_id=text["profile_artifact_id"]))


def test_text_and_tabular_tasks_and_a_predictions_file(wh, tmp_path):
    text = run_tier5(wh, config(task_name="trump_tweets", modality="text"))
    # the later tweets came mostly from an iPhone (24% Android vs 57% before): real drift
    assert text["modality"] == "text" and 0.5 < text["eval_metrics"]["accuracy"] < 0.9
    profile = wh.read("SELECT payload FROM artifacts WHERE artifact_id = ?", [text["profile_artifact_id"]])
    assert json.loads(profile["payload"][0])["features"]["tokens"]["type"] == "tokens"
    labels = bundled("breast_cancer").current["label"].to_numpy()
    flipped = np.where(np.arange(labels.size) % 4 == 0, 1 - labels, labels)
    path = tmp_path / "candidate.csv"
    pd.DataFrame({"prediction": flipped}).to_csv(path, index=False)
    tabular = run_tier5(wh, config(task_name="breast_cancer", modality="tabular",
                                   candidate={"kind": "predictions", "path": str(path)}))
    assert tabular["candidate_version"] == "candidate"
    assert tabular["eval_metrics"]["accuracy"] == pytest.approx(np.mean(flipped == labels))


@pytest.mark.parametrize("overrides,message", [
    ({"task_name": "imagenet"}, "unknown task"),
    ({"modality": "text"}, "is vision, not text"),
    ({"tier": "4"}, "Tier 5"),
    ({"baseline_run_id": 99}, "baseline_run_id 99 is not in the warehouse"),
    ({"reference_profile_id": 99}, "artifact 99 is not in the warehouse"),
    ({"candidate": {"kind": "predictions", "path": "/nope.csv"}}, "does not exist"),
    ({"candidate": {"kind": "oracle"}}, "candidate kind"),
    ({"eval": {"batch_size": 0}}, "batch_size"),
])
def test_bad_configs_raise_clear_errors(wh, overrides, message):
    with pytest.raises(ValueError, match=message):
        run_tier5(wh, config(**overrides))
