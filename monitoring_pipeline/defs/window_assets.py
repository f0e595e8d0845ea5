"""Assets of one traffic window (a day x a monitored model): the window, its profile and drift."""

from dataclasses import replace

import dagster as dg
import pandas as pd

from monitoring_pipeline.core import compare_profiles
from monitoring_pipeline.core.service import service_metrics
from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.lake_traffic import traffic_frame
from monitoring_pipeline.lib.references import baseline_label, ensure_reference, load_reference
from monitoring_pipeline.lib.sources import primary_version, served_rows, serving_monitor
from monitoring_pipeline.lib.settings import spool_dir
from monitoring_pipeline.storage.results import replace_drift, replace_metrics
from monitoring_pipeline.storage.spool import drain
from monitoring_pipeline.storage.runs import run_for_dagster

from .metadata import drift_metadata, rounded, skipped_report
from .partitions import reference_mapping, window_of, window_partitions
from .resources import WAREHOUSE_POOL, WarehouseResource

GROUP = "monitoring"


class Step:
    """What every window asset starts from: its window, monitor, warehouse and run id.

    A window is judged as what served it: ``serve`` keeps the rows that answered its
    requests (each with its own version) and binds the monitor to the version that
    served most of them, whose reference judges the window. The registry's champion of
    today plays no part, so re-materializing a past window gives the same answer after
    any number of promotions.
    """

    def __init__(self, config: MonitorsConfig, context, warehouse: WarehouseResource):
        self._op = getattr(context, "op_execution_context", context)  # checks wrap an op context
        self.window = window_of(self._op)
        self.wh = warehouse.get()
        self.monitor = config.monitor(self.window.model)
        self._run_id = None

    def serve(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The window's served rows; binds the monitor to the version that served most."""
        served = served_rows(frame, self.monitor)
        self.bind(primary_version(self.monitor, served))
        return served

    def bind(self, version: str | None) -> None:
        if version is not None:
            self.monitor = replace(self.monitor, champion=version)
        elif self.monitor.model is not None:  # nothing served: judged against today's champion
            self.monitor = serving_monitor(self.wh, self.monitor)

    @property
    def run_id(self) -> int:
        if self._run_id is None:
            self._run_id = run_for_dagster(self.wh, self._op.run_id, self._op.job_name or "materialize",
                                           self.monitor.name, self.monitor.champion)
        return self._run_id

    @property
    def keys(self) -> dict:
        return {"partition_key": self.window.partition_key, "run_id": self.run_id}

    def reference(self, *, calibration: bool = False):
        """The stored reference of the bound version; its calibration sample (read only when
        asked for: a text sample is megabytes of embeddings) is for eval_metrics."""
        ref = load_reference(self.wh, self.monitor, calibration=calibration)
        if ref is None:
            raise ValueError(f"no stored reference for {self.monitor.name} {self.monitor.champion or ''}; "
                             "materialize reference_profile")
        return ref


def versions_served(served: pd.DataFrame) -> dict:
    return served["model_version"].astype(str).value_counts().to_dict() if len(served) else {}


def build_window_assets(config: MonitorsConfig) -> list[dg.AssetsDefinition]:
    parts = window_partitions(config)
    reference_dep = dg.AssetDep("reference_profile", partition_mapping=reference_mapping())

    @dg.asset(partitions_def=parts, group_name=GROUP, deps=[reference_dep], kinds={"duckdb", "pandas", "sklearn"},
              pool=WAREHOUSE_POOL)
    def traffic_window(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
        """The day's predictions of every model version, with the labels known so far."""
        step = Step(config, context, warehouse)
        ingested = None
        if step.monitor.traffic.source == "warehouse":  # what the HTTP API accepted is read with the window
            ingested = drain(step.wh, spool_dir()).as_dict()
            context.log.info(f"spool {spool_dir()}: {ingested}")
        frame = traffic_frame(step.monitor, step.wh, step.window)  # a lake window's: no features (lib/lake_traffic)
        served = step.serve(frame)
        ref, built = ensure_reference(step.wh, step.monitor, step.run_id, window=step.window.partition_key,
                                      served=served)
        if built:  # the first window of a model version stores its reference, once
            context.log_event(dg.AssetMaterialization(
                asset_key="reference_profile", partition=step.monitor.name,
                metadata={"built_by": "traffic_window", "features": len(ref.inputs.features),
                          "model_version": str(step.monitor.champion)}))
        service = service_metrics(served["latency_ms"], served["error"])
        replace_metrics(step.wh, service, model_name=step.monitor.name, model_version=step.monitor.champion,
                        data_split="production", window_start=step.window.start, window_end=step.window.end,
                        estimated=False, asset_key="traffic_window", **step.keys)
        return dg.Output(frame, metadata=rounded({
            "rows": len(served), "labeled": int(served["label"].notna().sum()) if len(served) else 0,
            "model_version": str(step.monitor.champion), "served_by": dg.MetadataValue.json(versions_served(served)),
            "shadow_rows": len(frame) - len(served),
            "latency_p95_ms": service["latency_p95_ms"], "error_rate": service["error_rate"],
            **({"spool_ingested": dg.MetadataValue.json(ingested)} if ingested is not None else {}),
        }))

    # current_profile, between the window and its drift, is a graph: shard_assets.py

    def drift_asset(name: str, drift_type: str, part: str, description: str):
        @dg.asset(name=name, partitions_def=parts, group_name=GROUP, deps=[reference_dep],
                  description=description, kinds={"duckdb"}, pool=WAREHOUSE_POOL)
        def report_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                         current_profile: dict) -> dg.Output[dict]:
            step = Step(config, context, warehouse)
            step.bind(current_profile["version"])
            if current_profile.get("skipped"):
                report = skipped_report(current_profile["skipped"])
                replace_drift(step.wh, report, drift_type, model_name=step.monitor.name,
                              model_version=step.monitor.champion, baseline_period="none",
                              current_period=step.window.day.isoformat(), asset_key=name, **step.keys)
                return dg.Output(report, metadata={"summary": report["summary"]})
            ref = step.reference()
            ref_profile, cur_profile = getattr(ref, part), current_profile[part]
            if ref_profile is None or cur_profile is None:
                report = skipped_report(f"no reference {part} for {step.monitor.name}")
                return dg.Output(report, metadata={"summary": report["summary"]})
            t = step.monitor.thresholds
            report = compare_profiles(ref_profile, cur_profile, alpha=t.alpha, correction=t.correction,
                                      thresholds=t.drift)
            replace_drift(step.wh, report, drift_type, model_name=step.monitor.name,
                          model_version=step.monitor.champion,
                          baseline_period=baseline_label(step.wh, step.monitor.name, ref.version),
                          current_period=step.window.day.isoformat(), asset_key=name, **step.keys)
            context.log.info(f"{step.window.partition_key}: {drift_type} drift {report['status']} - "
                             f"{report['summary']}")
            return dg.Output(report, metadata=drift_metadata(report, ref_profile, cur_profile, step.monitor.champion))

        return report_asset

    data_drift_report = drift_asset("data_drift_report", "data", "inputs",
                                    "Drift of the window's inputs against the reference, feature by feature.")
    prediction_drift_report = drift_asset("prediction_drift_report", "prediction", "outputs",
                                          "Drift of the champion's outputs against its outputs on the reference.")
    return [traffic_window, data_drift_report, prediction_drift_report]
