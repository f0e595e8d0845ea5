"""The reference of each monitored model: profiles of its training data and of the
champion's outputs on it, with the champion's reference metrics."""

import dagster as dg

from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.references import build_reference, load_reference, store_reference
from monitoring_pipeline.lib.sources import serving_monitor
from monitoring_pipeline.storage.runs import run_for_dagster

from .metadata import rounded
from .partitions import model_partitions
from .resources import WAREHOUSE_POOL, WarehouseResource


def build_reference_assets(config: MonitorsConfig) -> list[dg.AssetsDefinition]:
    @dg.asset(partitions_def=model_partitions(config), group_name="reference", kinds={"duckdb", "sklearn", "torch"},
              pool=WAREHOUSE_POOL)
    def reference_profile(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Profiles of the reference inputs and the champion's reference outputs, stored once per version.

        Windows read the stored profiles; the first window of a version builds them if this
        asset has not run yet. Materializing it rebuilds them (e.g. after the data changed).
        """
        wh = warehouse.get()
        monitor = serving_monitor(wh, config.monitor(context.partition_key))
        run_id = run_for_dagster(wh, context.run_id, context.job_name or "materialize", monitor.name,
                                 monitor.champion)
        if monitor.model is None:
            ref = build_reference(monitor)
            store_reference(wh, monitor, ref, run_id)
        else:  # a served model's reference is its training data, stored when it was trained
            ref = load_reference(wh, monitor)
            if ref is None and monitor.champion is None:
                raise ValueError(f"{monitor.name} has no trained champion yet; run simulate_traffic_job first")
            if ref is None:  # never stored whole (a store cut short): its next window builds it again
                raise ValueError(f"{monitor.name} {monitor.champion} has no complete stored reference; "
                                 "its next window builds it")
        return dg.MaterializeResult(metadata=rounded({
            "rows": ref.inputs.n_rows, "features": len(ref.inputs.features),
            "model_version": str(ref.version), "outputs": ref.outputs is not None,
            **{f"reference_{k}": float(v) for k, v in ref.metrics.items()
               if k in ("accuracy", "f1_macro", "roc_auc") and v is not None},
        }))

    return [reference_profile]
