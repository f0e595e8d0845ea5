"""Assets of a window's performance: metrics (measured or estimated), candidate vs champion,
and concept drift."""

import dagster as dg
import pandas as pd

from monitoring_pipeline.core import compare_models, concept_drift, evaluate_predictions
from monitoring_pipeline.core.concept import IMAGE_OPTIONS, image_features
from monitoring_pipeline.core.estimation import estimate_performance
from monitoring_pipeline.core.status import summarize
from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.estimation_inputs import current_inputs, positive_scores
from monitoring_pipeline.lib.references import concept_reference, typed_features
from monitoring_pipeline.lib.sources import labels_of, model_inputs_of, version_rows
from monitoring_pipeline.storage.estimates import record_window_performance
from monitoring_pipeline.storage.results import replace_comparison, replace_concept_drift

from .metadata import estimate_line, estimate_metadata, estimated_values, markdown_table, rounded
from .partitions import reference_mapping, window_partitions
from .resources import WAREHOUSE_POOL, WarehouseResource
from .window_assets import GROUP, Step


def realized_metrics(monitor, served: pd.DataFrame) -> dict | None:
    """The window's metrics on its labeled rows; None until enough labels arrived."""
    labeled = served[served["label"].notna()]
    if len(labeled) < monitor.thresholds.min_labeled_rows:
        return None
    if monitor.task == "regression":
        return evaluate_predictions(labeled["label"].astype(float), labeled["prediction"].astype(float),
                                    task="regression")
    y, pred = labels_of(labeled["label"]), labels_of(labeled["prediction"])
    return evaluate_predictions(y, pred, y_score=positive_scores(y, pred, labeled["confidence"]))


def window_estimate(step, served: pd.DataFrame, reference) -> tuple[dict | None, str]:
    """The window's label-free estimate against its version's calibration sample, or why
    there is none. Bad inputs (a class the reference never saw, a column it lacks) are the
    window's finding, stated, not a crash: the window's other results still get stored."""
    monitor = step.monitor
    sample = reference.calibration
    if sample is None:
        return None, "the reference holds no labeled sample of the model's outputs to calibrate on"
    current = current_inputs(step.wh, monitor, served, reference=reference)
    if current is None:
        return None, "no row of the window has a prediction and a score"
    if monitor.task == "regression":
        names = ("mae", "rmse")
    else:
        names = ("accuracy", "f1_macro", "roc_auc") if "y_score" in current and "y_score" in sample else ("accuracy",)
    method = monitor.estimation
    if method == "pape" and (sample.get("X") is None or current.get("X") is None):
        method = "cbpe"  # no inputs to weigh the reference by (core estimates regression by DLE either way)
    try:
        return estimate_performance(sample, current, method=method, metrics=names, task=monitor.task), ""
    except ValueError as error:
        return None, f"estimate failed: {error}"


def skipped_concept(reason: str) -> dg.Output:
    return dg.Output({"skipped": reason, "drifted": False, "severity": "ok"}, metadata={"summary": f"skipped: {reason}"})


def concept_inputs(step: Step, reference: pd.DataFrame, labeled: pd.DataFrame) -> tuple | str:
    """The reference's and the window's features for concept drift, or why there are none."""
    monitor = step.monitor
    if monitor.modality == "vision":  # pixels pooled to at most 8x8 per channel are the features
        try:
            ref_X = image_features(model_inputs_of(monitor, reference, []))
            cur_X = image_features(model_inputs_of(monitor, labeled, []))
        except ValueError as error:  # ragged or malformed images: a finding of the window, not a crash
            return f"images unusable as features ({error})"
        if ref_X.shape[1] != cur_X.shape[1]:
            return f"images pool to {cur_X.shape[1]} features, the reference's to {ref_X.shape[1]}"
        return ref_X, cur_X
    if monitor.traffic.source == "parquet":  # lib/lake_traffic: the window's frame is its outputs and labels
        return "a Parquet lake window's frame holds no features (its inputs are profiled in shards)"
    # A feature missing from the window is a quality finding (the gate names it); the
    # relation is still judged on the features the window has.
    features = [f for f in step.reference().inputs.features if f in labeled.columns and f in reference.columns]
    if not features:
        return "the window has none of the reference's features"
    return typed_features(monitor, reference, features), typed_features(monitor, labeled, features)


def build_performance_assets(config: MonitorsConfig) -> list[dg.AssetsDefinition]:
    parts = window_partitions(config)
    reference_dep = dg.AssetDep("reference_profile", partition_mapping=reference_mapping())

    @dg.asset(partitions_def=parts, group_name=GROUP, deps=[reference_dep],
              kinds={"duckdb", "pandas", "sklearn", "torch"}, pool=WAREHOUSE_POOL)
    def eval_metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     traffic_window: pd.DataFrame) -> dg.Output[dict]:
        """The champion's metrics on the window's labeled rows; before the labels, its metrics
        estimated from its calibrated scores, with intervals and whether they can be trusted.
        Labels replace the estimate; the estimate is kept beside them in performance_estimates."""
        step = Step(config, context, warehouse)
        served = step.serve(traffic_window)  # every version's served requests: what users got
        realized = realized_metrics(step.monitor, served)
        stored = step.reference(calibration=True)
        estimate, why_not = window_estimate(step, served, stored)
        n_labeled = int(served["label"].notna().sum())
        record_window_performance(step.wh, realized=realized, estimate=estimate, model_name=step.monitor.name,
                                  model_version=step.monitor.champion, window_start=step.window.start,
                                  window_end=step.window.end, n_rows=len(served), n_labeled=n_labeled,
                                  asset_key="eval_metrics", **step.keys)
        estimated = realized is None and estimate is not None
        metrics = realized if realized is not None else (estimated_values(estimate) if estimate else {})
        reference = stored.metrics
        result = {"metrics": metrics, "estimated": estimated, "estimate": estimate, "n_labeled": n_labeled,
                  "reference": reference, **({"estimate_unavailable": why_not} if why_not else {})}
        headline = {k: metrics[k] for k in ("accuracy", "f1_macro", "roc_auc", "rmse") if metrics.get(k) is not None}
        return dg.Output(result, metadata=rounded({
            "model_version": str(step.monitor.champion),
            "summary": summarize(eval_metrics=metrics) + (f" ({estimate_line(estimate)})" if estimated else ""),
            "estimated": estimated, "n_labeled": n_labeled,
            **{k: float(v) for k, v in headline.items()},
            **({"reference_accuracy": float(reference["accuracy"])} if "accuracy" in reference else {}),
            **estimate_metadata(estimate, why_not),
        }))

    @dg.asset(partitions_def=parts, group_name=GROUP, kinds={"duckdb", "pandas"}, pool=WAREHOUSE_POOL)
    def baseline_comparison(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                            traffic_window: pd.DataFrame) -> dg.Output[dict]:
        """The candidate against the champion on the same labeled requests, with a verdict."""
        step = Step(config, context, warehouse)
        step.serve(traffic_window)
        monitor = step.monitor
        champion = monitor.champion
        others = sorted(set(traffic_window["model_version"].dropna().astype(str)) - {champion})
        candidate = monitor.candidate if monitor.candidate in others else (others[0] if others else None)
        if candidate is None:
            return dg.Output({"status": "skipped", "reason": "no candidate traffic in this window"},
                             metadata={"summary": "skipped: no candidate traffic in this window"})
        base, cand = version_rows(traffic_window, champion), version_rows(traffic_window, candidate)
        both = base.merge(cand, on="request_id", suffixes=("_base", "_cand"))
        both = both[both["label_base"].notna()]
        if len(both) < monitor.thresholds.min_labeled_rows:
            reason = f"{len(both)} labeled requests seen by both versions; need {monitor.thresholds.min_labeled_rows}"
            return dg.Output({"status": "skipped", "reason": reason}, metadata={"summary": f"skipped: {reason}"})
        y = labels_of(both["label_base"])
        sides = []
        for suffix in ("_base", "_cand"):
            pred = labels_of(both["prediction" + suffix])
            sides.append({"y_true": y, "y_pred": pred, "y_score": positive_scores(y, pred, both["confidence" + suffix])})
        t = monitor.thresholds
        comparison = compare_models(*sides, regression_tolerance=t.regression_tolerance,
                                    improvement_margin=t.improvement_margin)
        replace_comparison(step.wh, comparison, model_name=monitor.name, baseline_version=champion,
                           candidate_version=candidate, asset_key="baseline_comparison", **step.keys)
        comparison.update(baseline_version=champion, candidate_version=candidate, n=len(both))
        rows = [{"metric": n, "champion": f"{m['baseline']:.3f}", "candidate": f"{m['candidate']:.3f}",
                 "delta": f"{m['delta']:+.3f}", "status": m["status"],
                 "95% CI": "n/a" if m["ci_low"] is None else f"[{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]"}
                for n, m in comparison["metrics"].items()]
        return dg.Output(comparison, metadata={
            "summary": summarize(comparison=comparison), "verdict": comparison["status"],
            "model_version": str(champion), "candidate_version": str(candidate),
            "metrics": dg.MetadataValue.md(markdown_table(rows, list(rows[0]))), "n": len(both)})

    @dg.asset(partitions_def=parts, group_name=GROUP, deps=[reference_dep], kinds={"duckdb", "pandas", "sklearn"},
              pool=WAREHOUSE_POOL)
    def concept_drift_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                             traffic_window: pd.DataFrame) -> dg.Output[dict]:
        """Whether the feature-label relation moved: reference vs the window's labeled rows."""
        step = Step(config, context, warehouse)
        labeled = step.serve(traffic_window)
        monitor = step.monitor
        labeled = labeled[labeled["label"].notna()]
        need = max(monitor.thresholds.min_labeled_rows, 20)
        one_class = monitor.task == "classification" and len(set(labels_of(labeled["label"]))) < 2
        if monitor.modality == "text" or len(labeled) < need or one_class:
            return skipped_concept("concept drift needs tabular or image features" if monitor.modality == "text"
                                   else f"{len(labeled)} labeled rows; need {need}" if len(labeled) < need
                                   else "every labeled row has the same class")
        reference, basis = concept_reference(step.wh, monitor)  # the relation the serving version was judged on
        target = labels_of if monitor.task == "classification" else (lambda s: s.astype(float).to_numpy())
        inputs = concept_inputs(step, reference, labeled)
        if isinstance(inputs, str):
            return skipped_concept(inputs)
        ref_X, cur_X = inputs
        options = IMAGE_OPTIONS if monitor.modality == "vision" else {}
        result = concept_drift(ref_X, target(reference["label"]), cur_X, target(labeled["label"]), task=monitor.task,
                               **options)
        replace_concept_drift(step.wh, result, model_name=monitor.name, model_version=monitor.champion,
                              baseline_period=f"{basis}@{monitor.champion}",
                              current_period=step.window.day.isoformat(), asset_key="concept_drift_report",
                              **step.keys)
        top = [{"feature": r["feature"], "reference": f"{r['reference']:.3f}", "current": f"{r['current']:.3f}",
                "change": f"{r['change']:+.3f}"} for r in result.importances[:8]]
        fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
        signals = [{"signal": s["signal"], "statistic": fmt(s["statistic"], ".3f"), "effect": fmt(s["effect"], ".3f"),
                    "threshold": f"{s['threshold']:.3f}", "p": fmt(s["p_value"], ".2g"),
                    "p (Holm)": fmt(s["p_value_adjusted"], ".2g"), "severity": s["severity"]}
                   for s in result.signals()]
        return dg.Output(result.to_dict(), metadata=rounded({
            "model_version": str(monitor.champion),
            "summary": "; ".join(result.reasons) or "no concept drift",
            "severity": result.severity,
            "importance_correlation": result.importance_correlation,
            "performance_change": result.performance_change,
            "performance_gap": result.performance_gap,
            "importance_p_value_adjusted": result.importance_p_adjusted,
            "performance_p_value_adjusted": result.performance_p_adjusted,
            "n_permutations": result.n_permutations,
            "signals": dg.MetadataValue.md(markdown_table(signals, list(signals[0]))),
            "importances": dg.MetadataValue.md(markdown_table(top, ["feature", "reference", "current", "change"])),
        }))

    return [eval_metrics, baseline_comparison, concept_drift_report]
