"""Partitions a person can read: the window days are the days that had traffic, in order.

The day dimension is dynamic (``monitoring_days``): simulated traffic, a schedule's tick
and a run started by its partition tag register it, so the window partitions are the registered
days x the models, not every day since ``start_date``.
"""

import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest

from monitoring_pipeline.definitions import build_definitions
from monitoring_pipeline.defs.partitions import DAYS, register_days, register_run_day, window_key, window_of

from .conftest import bundled_monitor, config_of

SERVED, OTHER = "served_breast_cancer", "breast_cancer_classifier"
DAGSTER = str(Path(sys.executable).parent / "dagster")


def served_monitor() -> dict:
    return {"name": SERVED, "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"},
            "traffic": {"source": "warehouse", "rows_per_day": 60},
            "model": {"kind": "random_forest", "params": {"n_estimators": 50}, "recent_days": 14,
                      "holdout_days": 2},
            "thresholds": {"slo": {"accuracy": 0.8, "latency_p95_ms": 10_000, "error_rate": 0.05}}}


@pytest.fixture
def defs(tmp_path, warehouse, monkeypatch):
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    return build_definitions(config_of(served_monitor(), bundled_monitor(), start="2026-01-01"), warehouse)


def test_register_days_is_idempotent_sorted_and_refuses_a_non_date():
    with dg.instance_for_test() as instance:
        assert register_days(instance, ["2026-03-03", "2026-03-01", "2026-03-03"]) == ["2026-03-01", "2026-03-03"]
        assert register_days(instance, ["2026-03-01", "2026-03-02"]) == ["2026-03-02"]
        # Dagster lists a dynamic dimension in insertion order: a late day comes last
        assert instance.get_dynamic_partitions(DAYS.name) == ["2026-03-01", "2026-03-03", "2026-03-02"]
        for bad in ("2026-13-45", "20260304", "2026-03-04T00:00"):
            with pytest.raises(ValueError, match=f"ISO date like 2026-01-05, got '{bad}'"):
                register_days(instance, [bad])
        assert len(instance.get_dynamic_partitions(DAYS.name)) == 3


def test_a_short_loop_makes_exactly_its_days_in_order_and_the_reference_maps_per_model(defs):
    with dg.instance_for_test() as instance:
        served = defs.resolve_job_def("simulate_traffic_job").execute_in_process(
            instance=instance, run_config={"ops": {"simulate_traffic": {"config": {
                "model": SERVED, "days": 3, "start_date": "2026-03-01", "label_delay_hours": 0}}}})
        days = [d["day"] for d in served.output_for_node("simulate_traffic")]
        assert days == ["2026-03-01", "2026-03-02", "2026-03-03"]
        assert instance.get_dynamic_partitions(DAYS.name) == days  # registered by the simulation, in order
        monitoring = defs.resolve_job_def("monitoring_job")
        for day in days:
            result = monitoring.execute_in_process(instance=instance, partition_key=window_key(day, SERVED),
                                                   raise_on_error=False)
            assert result.asset_materializations_for_node("monitoring_summary"), day

        window = defs.get_assets_def("traffic_window").partitions_def
        keys = window.get_partition_keys(dynamic_partitions_store=instance)
        # 3 days x 2 models, not one partition per day since start_date (2026-01-01: 62 days x 2)
        assert sorted(keys) == sorted(f"{d}|{m}" for d in days for m in (SERVED, OTHER))
        assert instance.get_materialized_partitions(dg.AssetKey("monitoring_summary")) == \
            {f"{d}|{SERVED}" for d in days}

        reference = defs.get_assets_def("reference_profile").partitions_def
        mapping = defs.get_assets_def("traffic_window").get_partition_mapping(dg.AssetKey("reference_profile"))
        upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
            window.empty_subset().with_partition_keys([window_key("2026-03-02", OTHER)]), window, reference,
            dynamic_partitions_store=instance)
        assert set(upstream.partitions_subset.get_partition_keys()) == {OTHER}
        downstream = mapping.get_downstream_partitions_for_partitions(
            reference.empty_subset().with_partition_keys([SERVED]), reference, window,
            dynamic_partitions_store=instance)
        assert sorted(downstream.get_partition_keys()) == [f"{d}|{SERVED}" for d in days]


def test_a_schedule_tick_registers_its_day_and_requests_one_run_per_scheduled_model(defs):
    daily = defs.resolve_schedule_def("daily_monitoring")
    with dg.instance_for_test() as instance:
        register_days(instance, ["2026-03-01"])
        # entered: the context opens its own instance from the ref and must close it
        with dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                       scheduled_execution_time=datetime(2026, 3, 3, 0, 30)) as context:
            requests = daily.evaluate_tick(context).run_requests
            again = daily.evaluate_tick(context).run_requests  # a second tick of the same day adds nothing
        assert instance.get_dynamic_partitions(DAYS.name) == ["2026-03-01", "2026-03-02"]
        assert [r.partition_key for r in requests] == [window_key("2026-03-02", m) for m in (SERVED, OTHER)]
        assert len(again) == 2 and instance.get_dynamic_partitions(DAYS.name) == ["2026-03-01", "2026-03-02"]


def test_a_run_started_by_its_partition_tag_has_its_day_registered_and_a_malformed_day_is_named():
    with dg.instance_for_test() as instance:
        assert register_run_day(instance, {"dagster/partition": f"2026-04-01|{OTHER}"}) == ["2026-04-01"]
        assert register_run_day(instance, {"dagster/partition": f"2026-04-01|{SERVED}"}) == []  # known day
        assert register_run_day(instance, {"dagster/partition": OTHER}) == []  # a reference: no day
        assert register_run_day(instance, {}) == []
        assert instance.get_dynamic_partitions(DAYS.name) == ["2026-04-01"]
        with pytest.raises(ValueError, match="ISO date like 2026-01-05, got '2026-04-31'"):
            register_run_day(instance, {"dagster/partition": f"2026-04-31|{OTHER}"})
        window = window_of(dg.build_asset_context(partition_key=f"2026-04-01|{OTHER}", instance=instance))
        assert (window.day, window.model, window.partition_key) == (date(2026, 4, 1), OTHER, f"2026-04-01|{OTHER}")


@pytest.mark.integration
def test_the_cli_runs_an_unregistered_day_and_names_a_malformed_one(tmp_path, warehouse_target):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MONITORING_WAREHOUSE": warehouse_target,
           "MONITORING_MODELS": str(tmp_path / "models")}

    def execute(key: str):
        return subprocess.run([DAGSTER, "job", "execute", "-m", "monitoring_pipeline", "-j", "monitoring_job",
                               "--tags", '{"dagster/partition": "%s"}' % key], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)

    # a fresh home, then a day after the first run stored a reference: there Dagster checks the
    # key of the reference input inside the first step, before any asset code
    for day in ("2026-01-05", "2026-01-06"):
        out = execute(f"{day}|{OTHER}")
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"registered window day {day}" in out.stderr and "RUN_SUCCESS" in out.stderr
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert instance.get_dynamic_partitions(DAYS.name) == ["2026-01-05", "2026-01-06"]
    assert instance.get_materialized_partitions(dg.AssetKey("approved_window")) == \
        {f"2026-01-05|{OTHER}", f"2026-01-06|{OTHER}"}
    bad = execute(f"2026-02-30|{OTHER}")
    assert bad.returncode == 1
    assert "a window's day must be an ISO date like 2026-01-05, got '2026-02-30'" in bad.stdout + bad.stderr
    assert instance.get_dynamic_partitions(DAYS.name) == ["2026-01-05", "2026-01-06"]


@pytest.mark.integration
def test_windows_add_registers_days_for_dg_launch(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb"),
           "MONITORING_MODELS": str(tmp_path / "models")}
    bin_dir = Path(sys.executable).parent

    def run(*command, **kw):
        return subprocess.run([str(bin_dir / command[0]), *command[1:]], env={**env, **kw}, capture_output=True,
                              text=True, timeout=900, cwd=Path(__file__).resolve().parents[2])

    def launch(day):
        return run("dg", "launch", "--job", "monitoring_job", "--partition", f"{day}|{OTHER}")

    refused = launch("2026-01-06")  # dg launch checks the key before the run: the day must be known
    assert refused.returncode != 0 and f"Could not find a partition with key `2026-01-06|{OTHER}`" in refused.stderr
    added = run("monitoring-pipeline", "windows", "add", "2026-01-07", "2026-01-06")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("registered 2 day(s) of monitoring_days") and "2026-01-06, 2026-01-07" in added.stdout
    again = run("monitoring-pipeline", "windows", "add", "2026-01-06")
    assert "registered 0 day(s)" in again.stdout and "already registered: 2026-01-06" in again.stdout
    bad = run("monitoring-pipeline", "windows", "add", "2026-1-8")
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1] == \
        "monitoring-pipeline: a window's day must be an ISO date like 2026-01-05, got '2026-1-8'"
    assert dg.DagsterInstance.from_config(str(tmp_path)).get_dynamic_partitions(DAYS.name) == \
        ["2026-01-06", "2026-01-07"]
    out = launch("2026-01-06")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RUN_SUCCESS" in out.stderr
