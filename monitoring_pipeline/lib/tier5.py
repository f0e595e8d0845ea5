"""The Tier 5 gate (seed T082): evaluate a candidate, compare it with a baseline run,
check drift against a stored reference profile, and reach one status.

Every step lands in the warehouse under the run it registers: the metrics, the
eval predictions (so a later run can compare against this one example by example),
the eval-set profile (usable as a later ``reference_profile_id``), the comparison,
the drift rows, the alerts it raises (a confirmed regression, an input drift alert) and
the final report, all before the gate decides.
"""

from __future__ import annotations

import json

import numpy as np

from monitoring_pipeline.core import (
    compare_models,
    compare_profiles,
    compute_dataset_profile,
    evaluate_predictions,
    monitoring_status,
    summarize,
)
from monitoring_pipeline.core.alert_rules import comparison_alerts, drift_alerts
from monitoring_pipeline.core.metrics import scalar_metrics
from monitoring_pipeline.storage import Warehouse, registry
from monitoring_pipeline.storage.results import (metrics_for_run, replace_comparison, replace_drift, replace_metrics,
                                                 upsert_alerts)
from monitoring_pipeline.storage.runs import get_run, load_profile, register_run, save_artifact, save_profile

from .sources import labels_of
from .tasks import candidate_predictions, profile_data, scores_for, task_dataset

ASSET = "tier5_report"


def _baseline_predictions(wh: Warehouse, run_id: int) -> dict | None:
    rows = wh.read("""SELECT payload FROM artifacts WHERE run_id = ? AND name = 'eval_predictions'
                      ORDER BY artifact_id DESC LIMIT 1""", [run_id])
    if rows.empty:
        return None
    return json.loads(rows["payload"][0])


def _compare(wh, cfg, task, y, candidate_side):
    baseline = get_run(wh, cfg["baseline_run_id"])
    if baseline is None:
        raise ValueError(f"baseline_run_id {cfg['baseline_run_id']} is not in the warehouse")
    options = dict(regression_tolerance=cfg["regression_tolerance"], improvement_margin=cfg["improvement_margin"])
    stored = _baseline_predictions(wh, cfg["baseline_run_id"])
    if stored is not None and stored["task"] == task and stored["y_true"] == y.tolist():
        base_side = {"y_true": y, "y_pred": np.array(stored["y_pred"], dtype=object),
                     "y_score": None if stored["y_score"] is None else np.array(stored["y_score"])}
        if base_side["y_score"] is None or candidate_side["y_score"] is None:
            base_side["y_score"] = candidate_side["y_score"] = None
        comparison = compare_models(base_side, candidate_side, **options)
    else:  # a baseline evaluated on other data: compare the metrics it logged
        base_metrics = metrics_for_run(wh, cfg["baseline_run_id"])
        if not base_metrics:
            raise ValueError(f"baseline run {cfg['baseline_run_id']} logged no metrics to compare with")
        comparison = compare_models(base_metrics, scalar_metrics(evaluate_predictions(
            y, candidate_side["y_pred"], y_score=candidate_side["y_score"])), **options)
    comparison["baseline_run_id"] = cfg["baseline_run_id"]
    comparison["baseline_version"] = baseline["model_version"]
    return comparison


def run_tier5(wh: Warehouse, cfg: dict, dagster_run_id: str | None = None) -> dict:
    """Run the gate for a config shaped like configs/example_tiers_monitoring.yaml."""
    if str(cfg.get("tier", "5")) != "5":
        raise ValueError(f"this is the Tier 5 job; the config says tier {cfg.get('tier')!r}")
    dataset = task_dataset(cfg["task_name"], cfg["modality"])
    candidate = candidate_predictions(dataset, cfg["candidate"], cfg["eval"]["batch_size"],
                                      registry.recorded_checkpoints(wh))
    y = labels_of(dataset.current["label"])
    labels = np.array(sorted(set(y) | set(candidate.predictions)), dtype=object)
    y_score = scores_for(candidate, labels)
    eval_metrics = evaluate_predictions(y, candidate.predictions, y_score=y_score, labels=labels)

    name, version = cfg["task_name"], candidate.version
    run_id = register_run(wh, "tier5_validation", task_name=name, model_name=name, model_version=version,
                          config=cfg, dagster_run_id=dagster_run_id)
    keys = dict(asset_key=ASSET, partition_key=f"run:{run_id}", run_id=run_id)
    replace_metrics(wh, eval_metrics, model_name=name, model_version=version, data_split="eval",
                    window_start=None, window_end=None, estimated=False, **keys)
    predictions_id = save_artifact(wh, "report", "eval_predictions", run_id=run_id, model_name=name,
                                   model_version=version, payload={
                                       "task": name, "y_true": y.tolist(), "y_pred": candidate.predictions.tolist(),
                                       "y_score": None if y_score is None else np.asarray(y_score).tolist()})
    inputs = profile_data(dataset, dataset.current)
    reference = load_profile(wh, cfg["reference_profile_id"]) if cfg.get("reference_profile_id") else None
    if reference is not None and reference.modality != dataset.modality:
        raise ValueError(f"reference profile {cfg['reference_profile_id']} is {reference.modality}, "
                         f"the task is {dataset.modality}")
    profile = compute_dataset_profile(inputs, dataset.modality, sample_size=cfg["sample_size"], reference=reference)
    profile_id = save_profile(wh, profile, "eval_inputs", run_id=run_id, model_name=name, model_version=version)

    comparison = None
    if cfg.get("baseline_run_id") is not None:
        comparison = _compare(wh, cfg, name, y, {"y_true": y, "y_pred": candidate.predictions,
                                                         "y_score": y_score})
        replace_comparison(wh, comparison, model_name=name, baseline_version=comparison["baseline_version"],
                           candidate_version=version, **keys)
    drift = None
    if reference is not None:
        drift = compare_profiles(reference, profile)
        replace_drift(wh, drift, "data", model_name=name, model_version=version,
                      baseline_period=f"artifact:{cfg['reference_profile_id']}", current_period=f"run:{run_id}",
                      **keys)
    status, reasons = monitoring_status(comparison, drift)
    result = {
        "run_id": run_id, "task_name": name, "modality": dataset.modality, "candidate_version": version,
        "eval_metrics": scalar_metrics(eval_metrics), "comparison": comparison, "drift": drift,
        "status": status, "reasons": reasons, "summary": summarize(eval_metrics, comparison, drift),
        "predictions_artifact_id": predictions_id, "profile_artifact_id": profile_id,
    }
    where = dict(model_name=name, window=f"run:{run_id}", model_version=version)
    alerts = [*(comparison_alerts(comparison, **where) if comparison else []),
              *(drift_alerts(drift, "data", **where) if drift else [])]
    upsert_alerts(wh, alerts, **keys)  # the record is complete before the gate decides
    result["alerts"] = [a.to_dict() for a in alerts]
    report_id = save_artifact(wh, "report", "tier5_report", payload=result, run_id=run_id, model_name=name,
                              model_version=version, **{k: keys[k] for k in ("asset_key", "partition_key")})
    # where a person finds the stored report: the SQL that reads it back
    result["report"] = (f"artifact {report_id} in {wh.name} "
                        f"(SELECT payload FROM artifacts WHERE artifact_id = {report_id})")
    return result
