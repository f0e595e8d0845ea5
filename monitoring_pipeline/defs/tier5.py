"""The Tier 5 gate (seed T082) as a job CI runs: ``dagster job execute -j tier5_monitoring_job -c ...``.

Its exit status is the deployment gate: the blocking check fails the run on "fail" and
skips ``tier5_deployment``, the candidate's clearance to deploy. The report, the
comparison, the drift rows and the alerts are stored before the check decides.
"""

import dagster as dg
from pydantic import Field

from monitoring_pipeline.lib.tier5 import run_tier5
from monitoring_pipeline.storage.runs import save_artifact

from .origin import RUN_TAGS
from .metadata import gate_line, rounded
from .resources import WAREHOUSE_POOL, WarehouseResource


class EvalOptions(dg.Config):
    batch_size: int = Field(8, description="Eval examples per call of the candidate's predict_proba.")


class CandidateOptions(dg.Config):
    """builtin: a bundled scikit-learn model (``name``, optionally trained on ``train_rows``);
    predictions: a CSV/Parquet file at ``path`` with a prediction per eval example;
    checkpoint: a trained model's directory at ``path`` (model card and weights, as
    data/models/<model>/<version>/), torch or scikit-learn. It loads only when the model
    registry records that directory, the path resolves under the models folder or to a
    registered directory, and the weights still have the sha256 the registry recorded."""

    kind: str = Field("builtin", description="builtin (a bundled model), predictions (a CSV/Parquet file with a "
                                             "'prediction' column) or checkpoint (a trained model's directory).")
    name: str | None = Field("logistic_regression", description="builtin: the bundled model, e.g. "
                                                                "logistic_regression or random_forest.")
    path: str | None = Field(None, description="predictions: the file; checkpoint: the model's directory, e.g. "
                                               "data/models/digits_classifier/v1.")
    train_rows: int | None = Field(None, description="builtin: train on this many rows only (default: all).")
    version: str | None = Field(None, description="The candidate's version as recorded (default: from its "
                                                  "name, file or model card).")


# The defaults are configs/example_tiers_monitoring.yaml's values, so the Launchpad's default
# config launches (test_ui_metadata checks both agree).
class Tier5Config(dg.Config):
    task_name: str = Field("digits", description="The bundled eval task: breast_cancer (tabular), digits "
                                                 "(vision) or trump_tweets (text).")
    modality: str = Field("vision", description="The task's modality: tabular, vision or text.")
    tier: str = Field("5", description="Must be 5: this job is the Tier 5 gate.")
    baseline_run_id: int | None = Field(None, description="A run_id of the runs table: compare the candidate with "
                                                          "that run's candidate (none: no comparison).")
    reference_profile_id: int | None = Field(None, description="An artifact_id of a stored profile: check the "
                                                               "eval set's drift against it (none: no drift check).")
    eval: EvalOptions = Field(EvalOptions(), description="How the eval set is scored.")
    candidate: CandidateOptions = Field(CandidateOptions(), description="The model under evaluation.")
    regression_tolerance: float = Field(0.05, description="A metric drop beyond this against the baseline is a "
                                                          "regression (fail).")
    improvement_margin: float = Field(0.01, description="A gain beyond this against the baseline is an "
                                                        "improvement.")
    sample_size: int = Field(1000, description="Eval examples sampled for the drift profile.")


@dg.asset(group_name="tier5", kinds={"duckdb", "sklearn", "torch"}, pool=WAREHOUSE_POOL)
def tier5_report(context: dg.AssetExecutionContext, config: Tier5Config,
                 warehouse: WarehouseResource) -> dg.Output[dict]:
    """Evaluate the candidate, compare it with the baseline run, check drift; one status."""
    result = run_tier5(warehouse.get(), config.model_dump(), context.run_id)
    print(result["summary"], flush=True)  # the seed's CLI prints it
    context.log.info(f"Tier 5 {result['status'].upper()} (run {result['run_id']}): {result['summary']}")
    for reason in result["reasons"]:
        context.log.info(f"  - {reason}")
    return dg.Output(result, metadata=rounded({
        "status": result["status"], "summary": result["summary"], "run_id": result["run_id"],
        "model_version": str(result["candidate_version"]), "profile_artifact_id": result["profile_artifact_id"],
        **{k: v for k, v in result["eval_metrics"].items() if k in ("accuracy", "f1_macro", "roc_auc")},
        **({"max_drift_js": float(result["drift"]["max_drift"])} if result["drift"] else {}),
    }))


def tier5_line(report: dict) -> str:
    """The gate's verdict in one line: "tier5_report_status_is_not_fail failed for Tier 5 run 3
    (digits, candidate logistic_regression): accuracy regressed by -29.6% (0.980 -> 0.683); ...;
    report: artifact 7 in <warehouse> (...)"; on "ok", the summary."""
    if report["status"] == "ok":
        return f"passed: {report['summary']}"
    where = f"Tier 5 run {report['run_id']} ({report['task_name']}, candidate {report['candidate_version']})"
    return gate_line("tier5_report_status_is_not_fail", where, "; ".join(report["reasons"]) or report["summary"],
                     report.get("report"), failed=report["status"] == "fail")


@dg.asset_check(asset=tier5_report, blocking=True)
def tier5_report_status_is_not_fail(context: dg.AssetCheckExecutionContext,
                                    tier5_report: dict) -> dg.AssetCheckResult:
    """ERROR on "fail" (a regression), WARN on "warn" (a drift alert)."""
    status, line = tier5_report["status"], tier5_line(tier5_report)
    if status != "ok":  # the CLI prints this line just before Dagster's failure and traceback
        (context.log.error if status == "fail" else context.log.warning)(line)
    return dg.AssetCheckResult(
        passed=status == "ok",
        severity=dg.AssetCheckSeverity.ERROR if status == "fail" else dg.AssetCheckSeverity.WARN,
        description=line,
        metadata={"status": status, "message": line, "summary": tier5_report["summary"],
                  "reasons": "; ".join(tier5_report["reasons"]) or "none"})


@dg.asset(group_name="tier5", kinds={"duckdb"}, pool=WAREHOUSE_POOL)
def tier5_deployment(tier5_report: dict, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The candidate cleared for deployment: runs only when the Tier 5 gate did not fail."""
    run_id, version = tier5_report["run_id"], tier5_report["candidate_version"]
    save_artifact(warehouse.get(), "report", "deployment_approval", payload={"tier5_run_id": run_id},
                  run_id=run_id, model_name=tier5_report["task_name"], model_version=version)
    return dg.MaterializeResult(metadata={"tier5_run_id": run_id, "candidate": str(version)})


tier5_monitoring_job = dg.define_asset_job(
    "tier5_monitoring_job", selection=dg.AssetSelection.assets(tier5_report, tier5_deployment),
    executor_def=dg.in_process_executor, run_tags=RUN_TAGS,
    description="Tier 5: evaluate a candidate, compare with a baseline run, check drift (exits non-zero on fail).")
