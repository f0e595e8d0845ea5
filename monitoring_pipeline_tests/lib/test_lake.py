"""The Parquet lake (lib/lake.py): a window profiled shard by shard gives the report of the whole
window read at once, on real traffic (NYC departures of Thanksgiving 2013 against January and
February, written as hourly hive partitions with DuckDB's COPY ... PARTITION_BY)."""

from dataclasses import replace
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core import (
    compare_profiles,
    compute_dataset_profile,
    merge_profiles,
)
from monitoring_pipeline.core.service import service_metrics
from monitoring_pipeline.demo import flights
from monitoring_pipeline.lib import lake
from monitoring_pipeline.lib.monitors import (
    Monitor,
    MonitorConfigError,
    Source,
    parse_monitors,
)
from monitoring_pipeline.lib.references import build_reference, window_profiles
from monitoring_pipeline.lib.sources import (
    Window,
    primary_version,
    served_rows,
    window_frame,
)

DAY = date(2013, 11, 28)  # Thanksgiving: the schedule drifts for real (warn), the carriers do not
KINDS = {"sched_dep_time": "numeric", "sched_arr_time": "numeric", "sched_hour": "numeric", "distance": "numeric",
         "carrier": "categorical", "origin": "categorical", "dest": "categorical"}


def _outputs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A served model's answers: late evening departures are predicted late."""
    score = 1.0 / (1.0 + np.exp(-(frame["sched_hour"].to_numpy(np.float64) - 15.0) / 2.5))
    return np.where(score > 0.5, "1", "0"), np.maximum(score, 1.0 - score)


def _flights() -> pd.DataFrame:
    return flights.flights().rename(columns={"hour": "sched_hour"})  # hour= names the lake's partitions


def _traffic(days: list[date]) -> pd.DataFrame:
    """The days' departures as logged traffic: v1 serves, v2 answers a fifth of the requests in
    shadow and 40 alone; sched_dep_time is an integer column, missing in the 06h rows of DAY."""
    data = _flights()
    frame = data[data["day"].isin(days)].reset_index(drop=True)
    rng = np.random.default_rng(0)
    frame["prediction"], frame["confidence"] = _outputs(frame)
    frame["request_id"] = [f"r{i}" for i in range(len(frame))]
    frame["model_version"] = "v1"
    frame.loc[frame.index[-40:], "model_version"] = "v2"
    frame["latency_ms"] = rng.gamma(2.0, 12.0, len(frame))
    frame["error"] = np.where(rng.random(len(frame)) < 0.02, "timeout", None)
    frame["label"] = frame["label"].astype(str)
    frame["sched_dep_time"] = frame["sched_dep_time"].astype("Int64")
    frame.loc[(frame["day"] == DAY) & (frame["ts"].dt.hour == 6), "sched_dep_time"] = pd.NA
    shadow = frame[(frame["model_version"] == "v1") & (rng.random(len(frame)) < 0.2)].copy()
    shadow["model_version"], shadow["prediction"] = "v2", np.where(shadow["prediction"] == "1", "0", "1")
    frame = pd.concat([frame, shadow], ignore_index=True)
    frame["model"], frame["hour"] = "flights", frame["ts"].dt.hour
    frame["day"] = frame["day"].astype(str)
    return frame


def _copy(frame: pd.DataFrame, target, partition_by: str | None) -> None:
    conn = duckdb.connect()
    conn.register("traffic", frame)
    options = f"FORMAT parquet, PARTITION_BY ({partition_by})" if partition_by else "FORMAT parquet"
    conn.execute(f"COPY traffic TO '{target}' ({options})")
    conn.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The lake (three days, hourly partitions, another model's folder beside), the reference file
    and the monitor."""
    root = tmp_path_factory.mktemp("lake")
    traffic = _traffic([date(2013, 11, 27), DAY, date(2013, 11, 29)])
    _copy(traffic, root / "traffic", "model, day, hour")
    _copy(traffic.assign(model="another"), root / "other", "model, day, hour")
    (root / "traffic" / "model=another").symlink_to(root / "other" / "model=another")
    reference = _flights()
    reference = reference[reference["day"] < flights.REFERENCE_END].reset_index(drop=True)
    reference["prediction"], reference["confidence"] = _outputs(reference)
    _copy(reference[[*KINDS, "prediction", "confidence", "label"]], root / "reference.parquet", None)
    monitor = Monitor(name="flights", modality="tabular",
                      reference=Source("file", path=str(root / "reference.parquet")),
                      traffic=Source("parquet", path=str(root / "traffic")), features=KINDS, champion="v1",
                      candidate="v2")
    return {"root": root, "monitor": monitor, "reference": build_reference(monitor), "traffic": traffic}


def _window(day: date = DAY) -> Window:
    return Window(day, "flights", f"{day.isoformat()}|flights")


def _unsharded(monitor: Monitor, reference, window: Window):
    """The window as the pipeline reads it without shards: one frame, served rows, profiles."""
    frame = window_frame(monitor, None, window)
    served = served_rows(frame, monitor)
    return frame, served, window_profiles(None, monitor, served, list(KINDS), reference)


def _same_report(sharded, unsharded) -> None:
    assert sharded["status"] == unsharded["status"]
    assert sharded["schema"] == unsharded["schema"] and sharded["quality"] == unsharded["quality"]
    assert [r["name"] for r in sharded["features"]] == [r["name"] for r in unsharded["features"]]
    for a, b in zip(sharded["features"], unsharded["features"]):
        for key in ("kind", "method", "test", "n_ref", "n_cur", "significant", "drifted", "severity"):
            assert a[key] == b[key], (a["name"], key)
        for key in ("statistic", "p_value", "p_value_adjusted", "effect_size", "js"):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), (a["name"], key)


@pytest.mark.parametrize("declared", [True, False], ids=["declared kinds", "kinds from the reference"])
def test_sharded_and_unsharded_profiles_give_the_same_report(world, declared):
    monitor, reference, window = world["monitor"], world["reference"], _window()
    if not declared:  # text columns stay pandas' str, not Python objects: the dtypes must still agree
        monitor = replace(monitor, features=None)
        reference = build_reference(monitor)
    shards = lake.window_shards(monitor, window)
    frame, served, (inputs, outputs) = _unsharded(monitor, reference, window)
    assert [s.label for s in shards] == sorted({f"hour={h:02d}" for h in frame["ts"].dt.hour})
    assert all("model=flights" in f and f"day={DAY}" in f for s in shards for f in s.files)
    assert lake.window_versions(monitor, window) == served["model_version"].value_counts().to_dict()
    assert primary_version(monitor, served) == "v1"

    merged = lake.merge_shard_profiles([lake.profile_shard(monitor, s, window, reference, list(KINDS))
                                        for s in reversed(shards)])
    assert (merged.rows, merged.served, merged.empty_shards) == (len(frame), len(served), ())
    assert merged.labeled == int(served["label"].notna().sum())
    assert merged.service() == pytest.approx(service_metrics(served["latency_ms"], served["error"]))
    for name in ("sched_dep_time", "distance"):  # counts exact, moments within rounding
        a, b = merged.inputs.features[name], inputs.features[name]
        assert (a.counts, a.n_missing, a.moments.count, a.moments.min) == (b.counts, b.n_missing, b.moments.count,
                                                                            b.moments.min)
        assert a.moments.mean == pytest.approx(b.moments.mean, rel=1e-12)
        assert a.moments.std == pytest.approx(b.moments.std, rel=1e-9)
    assert merged.inputs.features["sched_dep_time"].n_missing > 0  # the 06h rows
    assert merged.inputs.dtypes == inputs.dtypes  # Int64 in the 06h shard, int64 elsewhere: Int64 merged
    assert inputs.dtypes["carrier"] == ("object" if declared else "str")
    assert merged.inputs.features["dest"] == inputs.features["dest"]
    t = monitor.thresholds
    report = compare_profiles(reference.inputs, merged.inputs, alpha=t.alpha, correction=t.correction)
    _same_report(report, compare_profiles(reference.inputs, inputs, alpha=t.alpha, correction=t.correction))
    assert report["status"] == "warn" and report["n_drifted"] >= 2  # the holiday schedule, found either way
    _same_report(compare_profiles(reference.outputs, merged.outputs), compare_profiles(reference.outputs, outputs))


def test_worker_processes_and_small_batches_give_the_same_profile(world, monkeypatch):
    monitor, reference, window = world["monitor"], world["reference"], _window()
    one = lake.profile_window(monitor, window, reference, list(KINDS))
    two = lake.profile_window(monitor, window, reference, list(KINDS), workers=2)
    assert two.inputs == one.inputs and two.outputs == one.outputs and two.versions == one.versions
    shards = lake.window_shards(monitor, window)
    whole = {s.label: lake.profile_shard(monitor, s, window, reference, list(KINDS)) for s in shards}
    monkeypatch.setattr(lake, "BATCH_ROWS", 16)  # a shard's rows profiled 16 at a time and merged
    busiest = max(shards, key=lambda s: whole[s.label].rows)
    assert whole[busiest.label].rows > 3 * 16
    batched = lake.profile_shard(monitor, busiest, window, reference, list(KINDS))
    assert (batched.rows, batched.served, batched.versions) == (whole[busiest.label].rows, whole[busiest.label].served,
                                                                whole[busiest.label].versions)
    for name, summary in whole[busiest.label].inputs.features.items():
        merged = batched.inputs.features[name]
        if summary.kind == "numeric":
            assert (merged.counts, merged.n_missing) == (summary.counts, summary.n_missing)
            assert merged.moments.mean == pytest.approx(summary.moments.mean, rel=1e-12)
        else:
            assert merged == summary
    assert not batched.inputs.features["distance"].percentiles_exact  # read off the merged bins


def test_a_plain_glob_is_cut_by_hour_of_a_zoned_timestamp(world, tmp_path):
    traffic = world["traffic"]
    days = traffic.assign(ts=traffic["ts"].dt.tz_localize("UTC")).drop(columns=["model", "hour"])
    for i, (day, rows) in enumerate(days.groupby("day")):
        _copy(rows.drop(columns="day"), tmp_path / f"part-{i}.parquet", None)
    monitor = Monitor(**{**world["monitor"].__dict__, "traffic": Source("parquet", path=str(tmp_path / "*.parquet"))})
    shards = lake.window_shards(monitor, _window())
    hive = lake.window_shards(world["monitor"], _window())
    assert [s.label for s in shards] == [s.label for s in hive] and not shards[0].hive
    assert all(s.end - s.start == pd.Timedelta(hours=1) for s in shards)
    plain = lake.profile_window(monitor, _window(), world["reference"], list(KINDS))
    hived = lake.profile_window(world["monitor"], _window(), world["reference"], list(KINDS))
    assert plain.rows == hived.rows and plain.served == hived.served
    for name in KINDS:
        assert plain.inputs.features[name].kind == hived.inputs.features[name].kind
    assert plain.inputs.features["carrier"] == hived.inputs.features["carrier"]
    assert plain.inputs.features["distance"].counts == hived.inputs.features["distance"].counts


def test_an_empty_hour_and_a_window_without_shards_are_recorded(world, tmp_path):
    monitor, reference = world["monitor"], world["reference"]
    lake_dir = tmp_path / "traffic"
    rows = world["traffic"][world["traffic"]["day"] == str(DAY)]
    _copy(rows, lake_dir, "model, day, hour")
    empty = lake_dir / "model=flights" / f"day={DAY}" / "hour=3"
    empty.mkdir()
    _copy(rows.head(0).drop(columns=["model", "day", "hour"]), empty / "data_0.parquet", None)
    monitor = Monitor(**{**monitor.__dict__, "traffic": Source("parquet", path=str(lake_dir))})
    shards = lake.window_shards(monitor, _window())
    assert "hour=03" in [s.label for s in shards]
    profiles = [lake.profile_shard(monitor, s, _window(), reference, list(KINDS)) for s in shards]
    quiet = next(p for p in profiles if p.label == "hour=03")
    assert (quiet.rows, quiet.inputs, quiet.outputs) == (0, None, None)
    merged = lake.merge_shard_profiles(profiles)
    assert merged.empty_shards == ("hour=03",) and merged.skipped is None
    assert merged.inputs == lake.profile_window(world["monitor"], _window(), reference, list(KINDS)).inputs

    later = _window(date(2013, 12, 1))  # the lake has no folder for it
    assert lake.window_shards(monitor, later) == []
    nothing = lake.profile_window(monitor, later, reference, list(KINDS))
    assert (nothing.skipped, nothing.rows, nothing.inputs, nothing.shards) == (lake.NO_TRAFFIC, 0, None, ())
    assert nothing.service()["request_count"] == 0 and lake.window_versions(monitor, later) == {}
    assert window_frame(monitor, None, later).empty


def _lake_monitor(world, path, **overrides) -> Monitor:
    return Monitor(**{**world["monitor"].__dict__, "traffic": Source("parquet", path=str(path)), **overrides})


def test_bad_lakes_are_named(world, tmp_path):
    window = _window()
    with pytest.raises(ValueError, match="traffic lake .*nowhere.* does not exist"):
        lake.window_shards(_lake_monitor(world, tmp_path / "nowhere"), window)
    with pytest.raises(ValueError, match="matches no file"):
        lake.window_shards(_lake_monitor(world, tmp_path / "nowhere" / "*.parquet"), window)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty: no \\*.parquet file under it"):
        lake.window_shards(_lake_monitor(world, tmp_path / "empty"), window)
    with pytest.raises(ValueError, match="has no column 'departure' \\(the monitor's ts_column\\); it has: .*carrier"):
        lake.window_shards(_lake_monitor(world, world["root"] / "traffic", traffic=Source(
            "parquet", path=str(world["root"] / "traffic"), ts_column="departure")), window)
    with pytest.raises(ValueError, match="has no column 'late' \\(the monitor's prediction_column\\)"):
        lake.window_shards(_lake_monitor(world, world["root"] / "traffic", prediction_column="late"), window)
    with pytest.raises(ValueError, match="has none of the features wind, rain"):
        shard = lake.window_shards(world["monitor"], window)[0]
        lake.profile_shard(world["monitor"], shard, window, world["reference"], ["wind", "rain"])

    broken = tmp_path / "broken"
    _copy(world["traffic"][world["traffic"]["day"] == str(DAY)], broken, "model, day, hour")
    (broken / "model=flights" / f"day={DAY}" / "hour=7" / "notes.parquet").write_text("late flights, by hand")
    with pytest.raises(ValueError, match="hour=7/notes.parquet is not a Parquet file \\(21 bytes, no PAR1"):
        lake.window_shards(_lake_monitor(world, broken), window)
    odd = tmp_path / "odd" / "model=flights" / "day=28-11-2013"
    odd.mkdir(parents=True)
    _copy(world["traffic"].head(5).drop(columns=["model", "day", "hour"]), odd / "x.parquet", None)
    with pytest.raises(ValueError, match="folder day=28-11-2013 is not a date"):
        lake.window_shards(_lake_monitor(world, tmp_path / "odd"), window)
    numbers = tmp_path / "numbers.parquet"
    _copy(world["traffic"].head(5).assign(ts=1).drop(columns=["model", "day", "hour"]), numbers, None)
    with pytest.raises(ValueError, match="column 'ts' holds BIGINT, not timestamps"):
        lake.window_shards(_lake_monitor(world, numbers), window)


def test_monitors_yaml_declares_a_lake():
    base = {"name": "m", "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"}}

    def parse(**overrides):
        return parse_monitors({"start_date": "2026-01-01", "monitors": [{**base, **overrides}]}).monitors[0]

    monitor = parse(traffic={"source": "parquet", "path": "lake/traffic", "ts_column": "served_at"})
    assert (monitor.traffic.source, monitor.traffic.path, monitor.traffic.ts_column) == \
        ("parquet", "lake/traffic", "served_at")
    with pytest.raises(MonitorConfigError, match="field 'traffic.path' is required for a parquet source"):
        parse(traffic={"source": "parquet"})
    with pytest.raises(MonitorConfigError, match="field 'reference.source' parquet is a traffic lake"):
        parse(reference={"source": "parquet", "path": "lake"})
    with pytest.raises(MonitorConfigError, match="field 'traffic.columns' applies to CSV file sources only"):
        parse(traffic={"source": "parquet", "path": "lake", "columns": {"x": "DOUBLE"}})


def test_merged_dtypes_follow_pandas_concatenation():
    with_missing = compute_dataset_profile(pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}), "tabular")
    without = compute_dataset_profile(pd.DataFrame({"n": np.array([3, 4])}), "tabular", reference=with_missing)
    assert merge_profiles(without, with_missing).dtypes == {"n": "Int64"}
    assert merge_profiles(with_missing, without).dtypes == {"n": "Int64"}
    floats = compute_dataset_profile(pd.DataFrame({"n": [0.5, 1.5]}), "tabular", reference=with_missing)
    assert merge_profiles(without, floats).dtypes == {"n": "float64"}


def test_the_lean_frame_holds_the_window_s_rows_alike_from_the_hive_and_from_a_zoned_glob(world, tmp_path):
    """lib/lake_traffic (what traffic_window holds for a lake): every row of the day and no other,
    oldest first, request ids numbered (equal ids, equal numbers), versions and errors as categories."""
    from monitoring_pipeline.lib.lake_traffic import COLUMNS, lake_traffic

    traffic = world["traffic"]
    zoned = traffic.assign(ts=traffic["ts"].dt.tz_localize("UTC")).drop(columns=["model", "hour"])
    for i, (day, rows) in enumerate(zoned.groupby("day")):
        _copy(rows.drop(columns="day"), tmp_path / f"part-{i}.parquet", None)
    plain = Monitor(**{**world["monitor"].__dict__, "traffic": Source("parquet", path=str(tmp_path / "*.parquet"))})
    hived, globbed = lake_traffic(world["monitor"], _window()), lake_traffic(plain, _window())
    day = traffic[traffic["day"] == DAY.isoformat()]
    assert len(day) and len(hived) == len(globbed) == len(day)
    for frame in (hived, globbed):
        assert tuple(frame.columns) == COLUMNS and frame["ts"].is_monotonic_increasing
        assert frame["ts"].min() >= pd.Timestamp(DAY) and frame["ts"].max() < pd.Timestamp(DAY) + pd.Timedelta(days=1)
        assert frame["request_id"].nunique() == day["request_id"].nunique()
        assert frame["request_id"].duplicated().sum() == day["request_id"].duplicated().sum()  # the shadows pair up
        assert frame["model_version"].value_counts().to_dict() == day["model_version"].value_counts().to_dict()
        assert int(frame["error"].notna().sum()) == int(day["error"].notna().sum())
        assert isinstance(frame["model_version"].dtype, pd.CategoricalDtype)

    def ordered(frame):
        return frame.drop(columns="request_id", errors="ignore").sort_values(["ts", "model_version", "latency_ms"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(ordered(hived), ordered(globbed))
    expected = day.assign(ts=day["ts"].astype("datetime64[us]"))[["ts", "model_version", "prediction", "confidence",
                                                                   "latency_ms", "label"]]
    got = ordered(hived)[["ts", "model_version", "prediction", "confidence", "latency_ms", "label"]]
    pd.testing.assert_frame_equal(got.astype({"model_version": str, "prediction": str, "label": str}),
                                  ordered(expected).astype({"model_version": str, "prediction": str, "label": str}),
                                  check_dtype=False)
