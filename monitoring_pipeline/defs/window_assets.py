"""Assets of one traffic window (a day x a monitored model): the window, its profile and drift."""

import dagster as dg
import pandas as pd

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.core.service import service_metrics
from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.references import ensure_reference, load_reference, profile_inputs
from monitoring_pipeline.lib.sources import (champion_version, outputs_of, serving_monitor, version_rows,
                                             window_frame)
from monitoring_pipeline.storage.results import replace_drift, replace_metrics
from monitoring_pipeline.storage.runs import run_for_dagster, save_profile

from .metadata import drift_metadata, skipped_report
from .partitions import reference_mapping, window_of, window_partitions
from .resources import WarehouseResource

GROUP = "monitoring"


class Step:
    """What every window asset starts from: its window, monitor, warehouse and run id."""

    def __init__(self, config: MonitorsConfig, context, warehouse: WarehouseResource):
        op = getattr(context, "op_execution_context", context)  # checks wrap an op context
        self.window = window_of(op)
        self.wh = warehouse.get()
        self.monitor = serving_monitor(self.wh, config.monitor(self.window.model))
        self.run_id = run_for_dagster(self.wh, op.run_id, op.job_name or "materialize",
                                      self.monitor.name, self.monitor.champion)

    @property
    def keys(self) -> dict:
        return {"partition_key": self.window.partition_key, "run_id": self.run_id}

    def reference(self):
        ref = load_reference(self.wh, self.monitor)
        if ref is None:
            raise ValueError(f"no stored reference for {self.monitor.name}; materialize reference_profile")
        return ref

    def served(self, frame: pd.DataFrame) -> pd.DataFrame:
        return version_rows(frame, champion_version(self.monitor, frame))


def build_window_assets(config: MonitorsConfig) -> list[dg.AssetsDefinition]:
    parts = window_partitions(config)
    reference_dep = dg.AssetDep("reference_profile", partition_mapping=reference_mapping())

    @dg.asset(partitions_def=parts, group_name=GROUP, deps=[reference_dep])
    def traffic_window(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
        """The day's predictions of every model version, with the labels known so far."""
        step = Step(config, context, warehouse)
        ref, built = ensure_reference(step.wh, step.monitor, step.run_id)
        if built:  # the first window of a model version stores its reference, once
            context.log_event(dg.AssetMaterialization(
                asset_key="reference_profile", partition=step.monitor.name,
                metadata={"built_by": "traffic_window", "features": len(ref.inputs.features)}))
        frame = window_frame(step.monitor, step.wh, step.window)
        served = step.served(frame)
        service = service_metrics(served["latency_ms"], served["error"])
        replace_metrics(step.wh, service, model_name=step.monitor.name, model_version=step.monitor.champion,
                        data_split="production", window_start=step.window.start, window_end=step.window.end,
                        estimated=False, asset_key="traffic_window", **step.keys)
        versions = frame["model_version"].astype(str).value_counts().to_dict() if len(frame) else {}
        return dg.Output(frame, metadata={
            "rows": len(served), "labeled": int(served["label"].notna().sum()) if len(served) else 0,
            "versions": dg.MetadataValue.json(versions),
            "latency_p95_ms": service["latency_p95_ms"], "error_rate": service["error_rate"],
        })

    @dg.asset(partitions_def=parts, group_name=GROUP, deps=[reference_dep])
    def current_profile(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        traffic_window: pd.DataFrame) -> dg.Output[dict]:
        """Profiles of the window's inputs and of the champion's outputs, on the reference's bins."""
        step = Step(config, context, warehouse)
        ref = step.reference()
        served = step.served(traffic_window)
        if served.empty:
            raise ValueError(f"{step.window.partition_key}: the window has no traffic to profile")
        features = [f for f in ref.inputs.features if f in served.columns] or list(ref.inputs.features)
        inputs = profile_inputs(step.monitor, served, features, reference=ref.inputs)
        keys = dict(model_name=step.monitor.name, model_version=step.monitor.champion,
                    asset_key="current_profile", **step.keys)
        save_profile(step.wh, inputs, "current_inputs", **keys)
        outputs = None
        if ref.outputs is not None:
            outputs = compute_dataset_profile(
                outputs_of(served["prediction"], served["confidence"], step.monitor.task), "outputs",
                reference=ref.outputs)
            save_profile(step.wh, outputs, "current_outputs", **keys)
        return dg.Output({"inputs": inputs, "outputs": outputs},
                         metadata={"rows": inputs.n_rows, "features": len(inputs.features)})

    def drift_asset(name: str, drift_type: str, part: str, description: str):
        @dg.asset(name=name, partitions_def=parts, group_name=GROUP, deps=[reference_dep],
                  description=description)
        def report_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                         current_profile: dict) -> dg.Output[dict]:
            step = Step(config, context, warehouse)
            ref = step.reference()
            ref_profile, cur_profile = getattr(ref, part), current_profile[part]
            if ref_profile is None or cur_profile is None:
                report = skipped_report(f"no reference {part} for {step.monitor.name}")
                return dg.Output(report, metadata={"summary": report["summary"]})
            t = step.monitor.thresholds
            report = compare_profiles(ref_profile, cur_profile, alpha=t.alpha, correction=t.correction,
                                      thresholds=t.drift)
            replace_drift(step.wh, report, drift_type, model_name=step.monitor.name,
                          model_version=step.monitor.champion, baseline_period=f"reference@{ref.version}",
                          current_period=step.window.day.isoformat(), asset_key=name, **step.keys)
            context.log.info(f"{step.window.partition_key}: {drift_type} drift {report['status']} - "
                             f"{report['summary']}")
            return dg.Output(report, metadata=drift_metadata(report, ref_profile, cur_profile))

        return report_asset

    data_drift_report = drift_asset("data_drift_report", "data", "inputs",
                                    "Drift of the window's inputs against the reference, feature by feature.")
    prediction_drift_report = drift_asset("prediction_drift_report", "prediction", "outputs",
                                          "Drift of the champion's outputs against its outputs on the reference.")
    return [traffic_window, current_profile, data_drift_report, prediction_drift_report]
