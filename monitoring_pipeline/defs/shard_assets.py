"""``current_profile`` as a fan-out: one step per shard of a Parquet lake window, then a merge.

A monitor whose traffic is a Parquet lake (``traffic: {source: parquet}``) has windows too big
for one frame. ``current_profile`` is a graph: ``window_shards`` lists the window's shards (an
hour, or a file: :mod:`monitoring_pipeline.lib.lake`), one ``shard_profile`` step per shard
profiles its rows against the stored reference in bounded memory, and ``merged_profile`` merges
the shard profiles (counts, sums and moments exactly) and stores them. A shard step touches
neither the warehouse nor a whole window: it reads its own files in batches and passes on a
profile (kilobytes, plus its rows' latencies at 8 bytes a row), and it is in no concurrency
pool, so the shard steps run side by side under the multiprocess, Kubernetes or Celery
executors even where the ``warehouse`` pool lets one writer at a time (one after another in
process). Every other window is profiled whole in ``window_shards``, as before the fan-out,
and has no shard step.

Dynamic outputs rather than hourly sub-partitions: a window is already a day x a model and
Dagster's multi-partitions have two dimensions; a window's shards are known only when it runs
(the hours or files that exist, none for an empty day, files for a lake without hours); and one
run per window keeps its record, its retries and its gates in one place.

The window's other assets get ``traffic_window``'s narrow frame (:mod:`monitoring_pipeline.lib.
lake_traffic`: predictions, labels, latency, errors, no features); its data quality is judged on
the merged profile (:func:`lake_quality`).
"""

import re

import dagster as dg
import pandas as pd

from monitoring_pipeline.core.profile_quality import profile_quality
from monitoring_pipeline.core.quality import QualityResult
from monitoring_pipeline.lib.lake import Shard, ShardProfile, merge_shard_profiles, profile_shard, window_shards
from monitoring_pipeline.lib.lake_traffic import is_lake
from monitoring_pipeline.lib.model_views import has_views
from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.references import window_profiles
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.runs import load_profile, save_profile

from .partitions import reference_mapping, window_partitions
from .resources import WAREHOUSE_POOL, WarehouseResource
from .window_assets import GROUP, Step, versions_served

NO_TRAFFIC = "the window has no traffic to profile"


def mapping_keys(shards: list[Shard]) -> list[str]:
    """Dagster's names of the shard steps (letters, digits and _), unique: ``hour_05``, a file's path."""
    keys = []
    for shard in shards:
        key = re.sub(r"[^A-Za-z0-9_]+", "_", shard.label).strip("_") or "shard"
        keys.append(key if key not in keys else f"{key}_{len(keys)}")
    return keys


def _saved(step: Step, inputs, outputs) -> None:
    keys = dict(model_name=step.monitor.name, model_version=step.monitor.champion, asset_key="current_profile",
                **step.keys)
    save_profile(step.wh, inputs, "current_inputs", **keys)
    if outputs is not None:
        save_profile(step.wh, outputs, "current_outputs", **keys)


def _skipped(version, reason: str, **metadata) -> tuple[dict, dict]:
    """Recorded as such: drift is "skipped", the quality gate names the cause."""
    return ({"inputs": None, "outputs": None, "version": version, "served_by": {}, "skipped": reason},
            {"rows": 0, "skipped": reason, **metadata})


def whole_window(step: Step, served: pd.DataFrame) -> tuple[dict, dict]:
    """The profile of a window held in one frame (every source but a lake), and its metadata."""
    ref = step.reference()
    version = step.monitor.champion
    features = [f for f in ref.inputs.features if f in served.columns] or list(ref.inputs.features)
    # another version's outputs are not comparable with this reference: only its own are profiled
    inputs, outputs = window_profiles(step.wh, step.monitor, served, features, ref)
    _saved(step, inputs, outputs)
    return ({"inputs": inputs, "outputs": outputs, "version": version, "served_by": versions_served(served)},
            {"rows": inputs.n_rows, "features": len(inputs.features), "model_version": str(version)})


def stored_inputs(wh: Warehouse, partition_key: str, version: str | None):
    """The window's inputs profile as ``current_profile`` stored it last; None if it stored none."""
    rows = wh.read("""SELECT artifact_id FROM artifacts WHERE asset_key = 'current_profile' AND name = 'current_inputs'
                      AND partition_key = ? AND model_version IS NOT DISTINCT FROM ?
                      ORDER BY artifact_id DESC LIMIT 1""", [partition_key, version])
    return None if rows.empty else load_profile(wh, int(rows["artifact_id"].iloc[0]))


def lake_quality(step, reference) -> QualityResult:
    """A lake window's data quality, judged on its merged inputs profile (its frame has no features)."""
    profile = stored_inputs(step.wh, step.window.partition_key, step.monitor.champion)
    if profile is None:
        raise ValueError(f"window {step.window.partition_key} has no stored current_profile of version "
                         f"{step.monitor.champion}; materialize current_profile first")
    t = step.monitor.thresholds
    day_end = pd.Timestamp(step.window.day, tz="UTC") + pd.Timedelta(days=1)
    return profile_quality(profile, reference, max_missing_share=t.max_missing_share,
                           max_infinite_share=t.max_infinite_share, ranges=step.monitor.ranges,
                           as_of=min(day_end, pd.Timestamp.now(tz="UTC")))


def build_current_profile(config: MonitorsConfig) -> dg.AssetsDefinition:
    parts = window_partitions(config)

    @dg.op(ins={"traffic_window": dg.In(pd.DataFrame), "reference_profile": dg.In(dg.Nothing)},
           out={"plan": dg.Out(dict), "shards": dg.DynamicOut(Shard)}, name="window_shards", pool=WAREHOUSE_POOL)
    def window_shards_op(context: dg.OpExecutionContext, warehouse: WarehouseResource, traffic_window):
        """The window's shards, one step each, for a lake; any other window profiled here, whole."""
        step = Step(config, context, warehouse)
        served = step.serve(traffic_window)
        version = step.monitor.champion
        if served.empty:
            yield dg.Output({"result": _skipped(version, NO_TRAFFIC)}, "plan")
            return
        if not is_lake(step.monitor):
            yield dg.Output({"result": whole_window(step, served)}, "plan")
            return
        ref = step.reference()
        shards = window_shards(step.monitor, step.window)
        context.log.info(f"{step.window.partition_key}: {len(shards)} shards of {len(served)} served rows")
        yield dg.Output({"monitor": step.monitor, "window": step.window, "reference": ref,
                         "features": list(ref.inputs.features), "version": version,
                         "served_by": versions_served(served), "served": len(served)},
                        "plan", metadata={"shards": len(shards), "served": len(served)})
        for key, shard in zip(mapping_keys(shards), shards):
            yield dg.DynamicOutput(shard, mapping_key=key, output_name="shards")

    @dg.op
    def shard_profile(context: dg.OpExecutionContext, warehouse: WarehouseResource, plan: dict,
                      shard: Shard) -> ShardProfile:
        """One shard's rows profiled against the reference, in batches of bounded size."""
        monitor = plan["monitor"]
        wh = warehouse.get() if has_views(monitor) else None  # only a served net's views read the warehouse
        profile = profile_shard(monitor, shard, plan["window"], plan["reference"], plan["features"], wh)  # on one core
        context.add_output_metadata({"shard": shard.label, "rows": profile.rows, "served": profile.served})
        return profile

    @dg.op(pool=WAREHOUSE_POOL)
    def merged_profile(context: dg.OpExecutionContext, warehouse: WarehouseResource, plan: dict,
                       shard_profiles: list) -> dg.Output[dict]:
        """The window's profile: the shards' merged and stored (or the whole window's, passed on)."""
        if "result" in plan:
            value, metadata = plan["result"]
            return dg.Output(value, metadata=metadata)
        step = Step(config, context, warehouse)
        step.bind(plan["version"])
        merged = merge_shard_profiles(shard_profiles)
        counts = {"shards": len(merged.shards), "empty_shards": dg.MetadataValue.json(list(merged.empty_shards))}
        if merged.skipped:
            value, metadata = _skipped(plan["version"], merged.skipped, **counts)
            return dg.Output(value, metadata=metadata)
        if merged.served != plan["served"]:  # rows landed or left between the two reads of a live lake
            context.log.warning(f"{step.window.partition_key}: the shards hold {merged.served} served rows, "
                                f"traffic_window read {plan['served']}")
        _saved(step, merged.inputs, merged.outputs)
        return dg.Output({"inputs": merged.inputs, "outputs": merged.outputs, "version": plan["version"],
                          "served_by": plan["served_by"]},
                         metadata={"rows": merged.inputs.n_rows, "features": len(merged.inputs.features),
                                   "model_version": str(plan["version"]), **counts,
                                   "traffic_window_rows": plan["served"]})

    @dg.graph_asset(name="current_profile", partitions_def=parts, group_name=GROUP,
                    kinds={"duckdb", "pandas", "torch"},
                    ins={"traffic_window": dg.AssetIn(),
                         "reference_profile": dg.AssetIn(partition_mapping=reference_mapping(),
                                                         dagster_type=dg.Nothing)},
                    description="Profiles of the window's served inputs (every version's requests) and of the "
                                "outputs of the version that served most of them, on that version's reference "
                                "bins; a Parquet lake window is profiled shard by shard, in parallel, and merged.")
    def current_profile(traffic_window, reference_profile):
        plan, shards = window_shards_op(traffic_window=traffic_window, reference_profile=reference_profile)
        profiles = shards.map(lambda shard: shard_profile(plan, shard))
        return merged_profile(plan, profiles.collect())

    return current_profile
