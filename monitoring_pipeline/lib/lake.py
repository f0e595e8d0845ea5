"""Traffic as a Parquet lake, profiled in shards.

A monitor's traffic is a lake when monitors.yaml says ``traffic: {source: parquet, path: ...}``:
``path`` is a directory of hive-partitioned files (``model=<monitor>/day=YYYY-MM-DD/hour=HH/*.parquet``,
every key optional) or a glob of Parquet files. ``ts_column`` names the timestamp and the monitor's
``label_column`` and ``prediction_column`` the label and the prediction, as for file sources; the
columns ``request_id``, ``model_version``, ``confidence``, ``latency_ms`` and ``error`` are read
where the files have them (:mod:`.lake_files` reads them).

A window (a day x a model) is cut into shards: one per ``hour=`` folder of the day (``model=``
and ``day=`` folders prune the files), one per file in a hive lake without hours, one per hour of
the timestamp in a plain glob. A shard is profiled alone against the stored reference, in batches
of at most ``BATCH_ROWS`` rows on one core (its memory is bounded whatever its size; text columns of
categorical features are counted by DuckDB and never become Python strings), and the shard
profiles merge into the window's (:func:`core.profiles.merge_profiles`: counts, sums and moments
exactly, percentiles within one bin). Dagster fans the shards out (``defs``); :func:`profile_window`
does the same in one call, with worker processes.

A request's shadow rows (one row per model version that answered it) must lie in one shard, as a
shadow call is logged at its request's time; the shard keeps the serving version's row, as
:func:`.sources.served_rows` does for a whole window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import reduce
from multiprocessing import get_all_start_methods, get_context

import numpy as np
import pandas as pd

from monitoring_pipeline.core import DatasetProfile, compute_dataset_profile, merge_profiles
from monitoring_pipeline.core.categorical import CategoricalSummary
from monitoring_pipeline.core.embedding import one_thread
from monitoring_pipeline.core.modalities import profile_threads

from . import lake_files as files
from .lake_files import OPTIONAL, Shard
from .monitors import Monitor

__all__ = ["BATCH_ROWS", "NO_TRAFFIC", "OPTIONAL", "Shard", "ShardProfile", "WindowProfile", "merge_shard_profiles",
           "profile_shard", "profile_window", "window_frame", "window_shards", "window_versions"]

BATCH_ROWS = files.VECTOR * 128  # rows profiled at once: ~60 MB of 25 numeric columns
NO_TRAFFIC = "the window has no traffic to profile"


@dataclass(frozen=True)
class ShardProfile:
    """One shard profiled against the reference: what :func:`merge_shard_profiles` merges.

    ``inputs`` is None for a shard without rows in the window (an empty hour: recorded, not
    profiled); ``outputs`` is None when the monitor's version answered none of its requests or the
    reference has no outputs. ``versions`` counts served rows per model version; ``latency_ms``
    holds the served rows' known latencies (the service metrics' percentiles are exact).
    """

    label: str
    rows: int
    served: int
    inputs: DatasetProfile | None
    outputs: DatasetProfile | None
    versions: dict[str, int] = field(default_factory=dict)
    labeled: int = 0
    errors: int = 0
    latency_ms: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True)
class WindowProfile:
    """A window's profiles merged from its shards, and what the shards held.

    ``inputs`` is None when no shard had a row (``skipped`` then says so); ``empty_shards``
    names the shards that had none.
    """

    inputs: DatasetProfile | None
    outputs: DatasetProfile | None
    rows: int
    served: int
    versions: dict[str, int]
    labeled: int
    errors: int
    latency_ms: np.ndarray
    shards: tuple[str, ...]
    empty_shards: tuple[str, ...]

    @property
    def skipped(self) -> str | None:
        return NO_TRAFFIC if self.inputs is None else None

    def service(self) -> dict:
        """:func:`core.service.service_metrics` of the served rows, from the merged shards."""
        out = {"request_count": self.served, "error_rate": self.errors / self.served if self.served else None}
        for q in (50, 95, 99):
            out[f"latency_p{q}_ms"] = float(np.percentile(self.latency_ms, q)) if self.latency_ms.size else None
        return out


def window_shards(monitor: Monitor, window) -> list[Shard]:
    """The shards of ``window`` (a :class:`.sources.Window`) in the monitor's lake, in order.

    An empty list is a window without traffic (no file of that model and day, or no row in its
    time range): recorded as such, not an error. ValueError for a lake that is missing or holds
    no Parquet file, a file that is not Parquet, or a timestamp or prediction column the files lack.
    """
    return files.list_shards(monitor, window)


def profile_shard(monitor: Monitor, shard: Shard, window, reference, features: Sequence[str], wh=None) -> ShardProfile:
    """Profile one shard of ``window`` against ``reference`` (a :class:`.references.Reference`).

    ``monitor`` is bound to the version that served the window (its ``champion``): its rows' outputs
    are profiled. ``features`` are the reference's features; those the files lack are left out (the
    drift report names them as missing columns). The shard is read in batches of ``BATCH_ROWS`` rows,
    each profiled and merged, so memory stays bounded. ``wh`` is needed only by monitors whose
    profiles go through their served model (vision nets, see :mod:`.model_views`).
    """
    if shard.start < window.start or shard.end > window.end:
        raise ValueError(f"shard {shard.label} [{shard.start}, {shard.end}) is not in window {window.partition_key}")
    # one core per shard: BLAS's and the column profiler's threads would compete with the other workers'
    with files.connect() as conn, one_thread(), profile_threads(1):
        columns = files.schema(monitor, shard.files, shard.hive, conn)
        present = [f for f in features if f in columns]
        if features and not present:
            raise ValueError(f"{files.what(monitor)} has none of the features {', '.join(features)}; "
                             f"it has: {', '.join(columns)}")
        counted = _counted(monitor, columns, present, reference)
        rest = [f for f in present if f not in counted]
        parts = [_profile_batch(monitor, batch, rest, reference, wh)
                 for batch in files.batches(conn, monitor, shard, columns, rest, BATCH_ROWS)]
        if not parts:
            return ShardProfile(shard.label, 0, 0, None, None)
        merged = reduce(_merge_two, parts)
        if counted:
            counts = files.category_counts(conn, monitor, shard, columns, counted)
            merged = replace(merged, inputs=_with_counts(monitor, merged.inputs, counts, present, reference))
    return replace(merged, label=shard.label)


def merge_shard_profiles(profiles: Sequence[ShardProfile]) -> WindowProfile:
    """The window's profile from its shards' (any order; merged in label order, so a rerun gives
    the same floats). No shard, or only empty ones: a window with no traffic (``skipped``)."""
    ordered = sorted(profiles, key=lambda p: p.label)
    full = [p for p in ordered if p.inputs is not None]
    merged = reduce(_merge_two, full) if full else ShardProfile("", 0, 0, None, None)
    return WindowProfile(merged.inputs, merged.outputs, sum(p.rows for p in ordered), merged.served, merged.versions,
                         merged.labeled, merged.errors, merged.latency_ms, tuple(p.label for p in ordered),
                         tuple(p.label for p in ordered if p.inputs is None))


def window_versions(monitor: Monitor, window) -> dict[str, int]:
    """Served rows per model version in the whole window, counted in DuckDB without reading the
    features: the version that served most is the one whose reference judges the window
    (:func:`.sources.primary_version`), chosen before the shards fan out. Empty when the lake has
    no ``model_version`` column or the window no rows."""
    shards = window_shards(monitor, window)
    paths = sorted({f for s in shards for f in s.files})
    if not paths:
        return {}
    hive = shards[0].hive
    columns = files.schema(monitor, paths, hive)
    if "model_version" not in columns:
        return {}
    served, params = files.served_sql(monitor, columns, paths, hive, ['"model_version"'], window.start, window.end)
    with files.connect() as conn:
        found = files.run(conn, monitor, f"SELECT CAST(model_version AS VARCHAR), count(*) FROM ({served}) GROUP BY 1",
                          params).fetchall()
    return {str(v): int(n) for v, n in found}


def profile_window(monitor: Monitor, window, reference, features: Sequence[str], *, workers: int = 1,
                   wh=None) -> WindowProfile:
    """Every shard of the window profiled (in ``workers`` processes) and merged: what the Dagster
    fan-out does, in one call. ``monitor`` is bound to the window's serving version."""
    shards = window_shards(monitor, window)
    if workers <= 1 or len(shards) <= 1:
        return merge_shard_profiles([profile_shard(monitor, s, window, reference, features, wh) for s in shards])
    if wh is not None:
        raise ValueError("profile_window with workers > 1 cannot pass a warehouse to its worker processes")
    # Forked workers start with what this process imported (seconds of imports each, spawned); this
    # thread's DuckDB connection is closed first. Other threads of the caller should hold none.
    fork = "fork" in get_all_start_methods()
    if fork:
        files.release()
    with ProcessPoolExecutor(workers, mp_context=get_context("fork" if fork else "spawn")) as pool:
        futures = [pool.submit(profile_shard, monitor, s, window, reference, features) for s in shards]
        return merge_shard_profiles([f.result() for f in futures])


def window_frame(monitor: Monitor, window) -> pd.DataFrame:
    """The whole window in one frame, the shape :func:`.sources.window_frame` gives (the unsharded
    path: memory grows with the window). Without a ``request_id`` column each row gets one."""
    shards = window_shards(monitor, window)
    if not shards:
        return pd.DataFrame(columns=["ts", *OPTIONAL, "prediction", "label"])
    columns = files.schema(monitor, sorted({f for s in shards for f in s.files}), shards[0].hive)
    hive_keys = {"model", "day", "hour"} if shards[0].hive else set()
    features = [c for c in columns if c not in files.mapped(monitor) and c not in hive_keys]
    with files.connect() as conn:
        frames = [batch for s in shards for batch in files.batches(conn, monitor, s, columns, features, None)]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if "request_id" not in columns:
        frame["request_id"] = [f"{window.partition_key}-{i}" for i in range(len(frame))]
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


# --- profiling ----------------------------------------------------------------------------------


def _profile_batch(monitor: Monitor, batch: pd.DataFrame, features: list[str], reference, wh) -> ShardProfile:
    """A batch of served rows (shadows were dropped by the query) profiled as window_profiles does."""
    from .references import window_profiles
    from .sources import outputs_of

    if features:
        inputs, outputs = window_profiles(wh, monitor, batch, features, reference)
    else:  # every feature is counted by DuckDB: the inputs hold the row count, the outputs as window_profiles
        inputs = DatasetProfile("tabular", len(batch), {}, n_rows_seen=len(batch))
        own = batch if monitor.champion is None else batch[batch["model_version"].astype(str) == str(monitor.champion)]
        outputs = None
        if len(own) and reference.outputs is not None:
            outputs = compute_dataset_profile(outputs_of(own["prediction"], own["confidence"], monitor.task),
                                              "outputs", reference=reference.outputs)
    latency = pd.to_numeric(batch["latency_ms"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    errors = batch["error"]
    logged = batch["model_version"].notna().any()
    versions = batch["model_version"].astype(str).value_counts().to_dict() if logged else {}
    return ShardProfile("", len(batch), len(batch), inputs, outputs, {str(k): int(v) for k, v in versions.items()},
                        int(batch["label"].notna().sum()), int((errors.notna() & (errors.astype(str) != "")).sum()),
                        latency[np.isfinite(latency)])


def _counted(monitor: Monitor, columns: dict, present: list[str], reference) -> list[str]:
    """Features whose categories DuckDB counts: text columns of a tabular monitor that the
    reference holds as categorical (a text value is its own label, declared or not)."""
    from .model_views import has_views

    if monitor.modality != "tabular" or has_views(monitor):
        return []
    declared = monitor.features or {}
    return [f for f in present if columns[f] == "VARCHAR" and declared.get(f, "categorical") == "categorical"
            and getattr(reference.inputs.features.get(f), "kind", None) == "categorical"]


def _with_counts(monitor: Monitor, inputs: DatasetProfile, counts: dict, present: list[str],
                 reference) -> DatasetProfile:
    """The inputs profile with the counted features added, in the order of the columns, typed as
    the pandas path types them: object when declared categorical (labels as Python objects), else
    pandas' str (object when the shard holds no value)."""
    declared = monitor.features or {}
    summaries, dtypes = dict(inputs.features), dict(inputs.dtypes)
    for name, (found, missing) in counts.items():
        summaries[name] = CategoricalSummary.from_counts(found, missing, reference.inputs.features[name])
        dtypes[name] = "object" if name in declared or not found else "str"
    order = {name: i for i, name in enumerate(present)}
    return replace(inputs, features=dict(sorted(summaries.items(), key=lambda kv: order.get(kv[0], len(order)))),
                   dtypes=dict(sorted(dtypes.items(), key=lambda kv: order.get(kv[0], len(order)))))


def _merge_two(a: ShardProfile, b: ShardProfile) -> ShardProfile:
    """Two non-empty shard profiles as one (outputs None on one side keep the other's)."""
    outputs = a.outputs if b.outputs is None else b.outputs if a.outputs is None else merge_profiles(a.outputs,
                                                                                                      b.outputs)
    return ShardProfile(a.label, a.rows + b.rows, a.served + b.served, merge_profiles(a.inputs, b.inputs), outputs,
                        dict(Counter(a.versions) + Counter(b.versions)), a.labeled + b.labeled, a.errors + b.errors,
                        np.concatenate([a.latency_ms, b.latency_ms]))
