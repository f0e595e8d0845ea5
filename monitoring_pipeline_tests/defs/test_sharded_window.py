"""A Parquet lake window through Dagster: profiled by one step per hourly shard, merged, and judged
as the same window read whole from one file (real breast-cancer rows scored by the bundled models)."""

import math

import dagster as dg
import duckdb
import pandas as pd
import pytest

from monitoring_pipeline.definitions import build_definitions
from monitoring_pipeline.defs.partitions import register_days
from monitoring_pipeline.defs.resources import WarehouseResource
from monitoring_pipeline.defs.shard_assets import stored_inputs
from monitoring_pipeline.lib.monitors import load_monitors
from monitoring_pipeline.lib.settings import monitors_path

from .conftest import DAY, MODEL, bundled_monitor, config_of, run_window, traffic_file, write_monitors

EMPTY_HOUR = 5  # its file is there, with no rows
SHIFT = {"mean radius": 1.3, "mean texture": 1.25, "worst area": 1.5}  # real drift, so verdicts differ by feature
DRIFT_COLUMNS = ["drift_type", "feature_name", "method", "test_statistic", "p_value", "effect_size", "threshold",
                 "severity", "drift_detected", "baseline_period", "current_period", "model_name", "model_version",
                 "partition_key", "asset_key"]


def write_parquet(frame: pd.DataFrame, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect()
    conn.register("frame", frame)
    conn.execute(f"COPY (SELECT * FROM frame) TO '{path}' (FORMAT PARQUET)")
    conn.close()


def day_rows(tmp_path, n=400, hours=range(24)) -> pd.DataFrame:
    """A day of traffic (every request answered by the champion and, in shadow, the candidate),
    without the rows of EMPTY_HOUR and of hours not in ``hours``."""
    frame = pd.read_csv(traffic_file(tmp_path / "day.csv", n=n, shift=SHIFT), parse_dates=["ts"])
    keep = frame["ts"].dt.hour.isin([h for h in hours if h != EMPTY_HOUR])
    return frame[keep].reset_index(drop=True)


def write_lake(frame: pd.DataFrame, root, hours=range(24)):
    """The rows as a hive lake, one file per hour: model=/day=/hour=HH/part.parquet."""
    for hour in hours:
        rows = frame[frame["ts"].dt.hour == hour]
        write_parquet(rows, root / f"model={MODEL}" / f"day={DAY}" / f"hour={hour:02d}" / "part.parquet")
    return root


def lake_monitor(root):
    return bundled_monitor(traffic={"source": "parquet", "path": str(root)})


def flat_monitor(path):
    return bundled_monitor(traffic={"source": "file", "path": str(path)})


def approx_equal(a, b, path="") -> None:
    """Equal, floats within 1e-9 relative (the merged moments are summed in another order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            approx_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            approx_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert (math.isnan(a) and math.isnan(b)) or b == pytest.approx(a, rel=1e-9, abs=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


def drift_rows(wh) -> pd.DataFrame:
    rows = wh.read(f"""SELECT {', '.join(DRIFT_COLUMNS)} FROM ml_drift_history WHERE drift_type IN ('data', 'prediction')
                       ORDER BY drift_type, feature_name""")
    return rows.reset_index(drop=True)


def step_events(result, name: str) -> dict:
    return {e.step_key: e.event_type_value for e in result.all_events
            if e.step_key and f".{name}[" in e.step_key and e.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE")}


@pytest.fixture
def two_sources(tmp_path):
    """The same window as a lake of hourly files and as one file."""
    frame = day_rows(tmp_path)
    write_parquet(frame, tmp_path / "flat" / "traffic.parquet")
    return frame, write_lake(frame, tmp_path / "lake"), tmp_path / "flat" / "traffic.parquet"


def test_a_lake_window_in_hourly_shards_gives_the_report_of_the_whole_window(two_sources, warehouse, more_targets):
    frame, lake, flat = two_sources
    whole_wh, lake_wh = WarehouseResource(path=more_targets("whole")), warehouse
    whole = run_window(config_of(flat_monitor(flat)), whole_wh)
    sharded = run_window(config_of(lake_monitor(lake)), lake_wh)

    # one step per hourly file, the empty hour's included, then one merge
    shards = step_events(sharded, "shard_profile")
    assert len(shards) == 24 and set(shards.values()) == {"STEP_SUCCESS"}
    assert f"current_profile.shard_profile[hour_{EMPTY_HOUR:02d}]" in shards
    meta = sharded.asset_materializations_for_node("current_profile")[0].metadata
    assert meta["shards"].value == 24 and meta["empty_shards"].value == [f"hour={EMPTY_HOUR:02d}"]
    assert not step_events(whole, "shard_profile")  # a window read whole has no shard step

    served = len(frame) // 2  # the candidate's rows are shadows of the champion's requests
    for result in (whole, sharded):
        assert result.output_for_node("current_profile")["inputs"].n_rows == served
    approx_equal(whole.output_for_node("current_profile")["served_by"],
                 sharded.output_for_node("current_profile")["served_by"])

    for report in ("data_drift_report", "prediction_drift_report"):
        expected, got = whole.output_for_node(report), sharded.output_for_node(report)
        assert [r["name"] for r in got["features"]] == [r["name"] for r in expected["features"]]
        approx_equal(expected, got, report)  # features, statistics, p-values, verdicts, summary
    drifted = {r["name"] for r in sharded.output_for_node("data_drift_report")["features"] if r["drifted"]}
    assert {"mean radius", "worst area"} <= drifted and len(drifted) < 30  # verdicts that differ by feature

    expected, got = drift_rows(whole_wh.get()), drift_rows(lake_wh.get())
    outputs = sharded.output_for_node("prediction_drift_report")  # predictions and confidences
    assert len(got) == 30 + outputs["n_features"] and got["drift_detected"].sum() == len(drifted) + outputs["n_drifted"]
    assert (got.drop(columns=["test_statistic", "p_value", "effect_size", "threshold"])
            .equals(expected.drop(columns=["test_statistic", "p_value", "effect_size", "threshold"])))
    for column in ("test_statistic", "p_value", "effect_size", "threshold"):
        pd.testing.assert_series_equal(got[column], expected[column], rtol=1e-9, atol=1e-12)

    # the lake's narrow frame serves the service and performance assets alike
    window = [next(m.metadata for m in r.asset_materializations_for_node("traffic_window")
                   if m.asset_key == dg.AssetKey("traffic_window")) for r in (whole, sharded)]
    for key in ("rows", "labeled", "served_by", "latency_p95_ms", "error_rate", "model_version"):
        assert window[0][key] == window[1][key], key
    approx_equal(whole.output_for_node("eval_metrics")["metrics"], sharded.output_for_node("eval_metrics")["metrics"])
    approx_equal(whole.output_for_node("baseline_comparison"), sharded.output_for_node("baseline_comparison"))
    # left out of a lake window, said so: inputs to weigh the reference by, features to relate to the labels
    assert sharded.output_for_node("eval_metrics")["estimate"]["method"] == "cbpe"
    assert whole.output_for_node("eval_metrics")["estimate"]["method"] == "pape"
    assert "profiled in shards" in sharded.output_for_node("concept_drift_report")["skipped"]
    # the data-quality gate judged on the merged profile: the frame's verdict
    gates = [r.output_for_node("window_gate")["gates"] for r in (whole, sharded)]
    assert {g: v["passed"] for g, v in gates[0].items()} == {g: v["passed"] for g, v in gates[1].items()}
    assert gates[1]["data_quality_passed"]["passed"] and not gates[1]["no_drift_alert"]["passed"]


def test_a_lake_window_without_shards_is_recorded_as_skipped(tmp_path, warehouse):
    frame = day_rows(tmp_path)
    frame["ts"] = frame["ts"] + pd.Timedelta(days=4)  # the lake holds another day
    lake = tmp_path / "lake"
    write_parquet(frame, lake / f"model={MODEL}" / f"day={DAY.replace(day=9)}" / "hour=10" / "part.parquet")
    result = run_window(config_of(lake_monitor(lake)), warehouse)
    assert not step_events(result, "shard_profile")
    assert result.output_for_node("current_profile")["skipped"] == "the window has no traffic to profile"
    assert result.output_for_node("data_drift_report")["skipped"] == "the window has no traffic to profile"
    gate = result.output_for_node("window_gate")["gates"]["data_quality_passed"]
    assert not gate["passed"] and "no rows" in gate["message"]
    assert result.output_for_node("monitoring_summary")["status"] == "fail"


def sharded_job():
    """The window and its profile on the multiprocess executor, two steps at a time; every step's
    process builds it again from $MONITORING_MONITORS and $MONITORING_WAREHOUSE."""
    defs = build_definitions(load_monitors(monitors_path()))
    job = dg.define_asset_job("sharded_profile_job", selection=dg.AssetSelection.assets(
        "traffic_window", "current_profile").without_checks(),  # the shards are then all that is ready at once
        executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2}))
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("sharded_profile_job")


def in_flight(records) -> list[tuple[str, float, float, int]]:
    """Each shard step's life in the executor: launched (STEP_WORKER_STARTING, by the run's
    process) to finished (STEP_SUCCESS, by the step's own process), with that process's id."""
    launched, finished, pids = {}, {}, {}
    for record in records:
        event = record.dagster_event
        if event is None or not event.step_key or ".shard_profile[" not in event.step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_WORKER_STARTING:
            launched[event.step_key] = record.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            finished[event.step_key], pids[event.step_key] = record.timestamp, event.pid
    return [(key, launched[key], finished[key], pids[key]) for key in sorted(finished)]


def most_at_once(intervals) -> int:
    points = sorted([(start, 1) for _, start, _, _ in intervals] + [(end, -1) for _, _, end, _ in intervals])
    running = peak = 0
    for _, change in points:
        running += change
        peak = max(peak, running)
    return peak


@pytest.mark.integration
def test_shard_steps_run_side_by_side_under_the_multiprocess_executor(tmp_path, monkeypatch):
    hours = range(4)
    frame = day_rows(tmp_path, hours=hours)
    lake = write_lake(frame, tmp_path / "lake", hours=hours)
    monkeypatch.setenv("MONITORING_MONITORS", str(write_monitors(tmp_path / "monitors.yaml", lake_monitor(lake))))
    monkeypatch.setenv("MONITORING_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        # as the embedded default's instance: one warehouse writer at a time; the shard steps never write
        instance.event_log_storage.set_concurrency_slots("warehouse", 1)
        register_days(instance, [DAY])
        with dg.execute_job(dg.reconstructable(sharded_job), instance,
                            tags={"dagster/partition": f"{DAY}|{MODEL}"}) as result:
            assert result.success
            records = instance.all_logs(result.run_id)
    steps = in_flight(records)
    assert [key for key, *_ in steps] == [f"current_profile.shard_profile[hour_{h:02d}]" for h in (0, 1, 2, 3)]
    assert len({pid for *_, pid in steps}) == 4  # a process per step
    assert most_at_once(steps) == 2  # two shard steps at once, never more than max_concurrent
    stored = stored_inputs(WarehouseResource(path=str(tmp_path / "warehouse.duckdb")).get(), f"{DAY}|{MODEL}",
                           "logistic_regression")
    assert stored.n_rows == len(frame) // 2  # the merge stored every served request of the 4 hours
