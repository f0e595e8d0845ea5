"""A ``dagster job execute`` run of monitoring_job killed with SIGKILL in the middle of a write
transaction leaves no half-written window, on either warehouse backend: per table, step and
partition there are either all the rows a complete run leaves or none; a window's rows being
replaced by a rerun stay the old ones whole. The rerun completes the window.

The run stops at a known point: kill_definitions.py (loaded by the real CLI with ``-f``) lets
one storage function's transaction do its work (DELETE + INSERT, or the reference's five
writes) and then wait, open, until the test kills the process group.

A killed run never gives back the warehouse pool slot its step held; the daemon's run monitoring
does that in production (configs/deploy/dagster.yaml: ``free_slots_after_run_end_seconds``), and the test
does what it would: marks the run failed and frees its slots.
"""

import os
import signal
import time

import pytest

from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline_tests.cli_runs import MODEL, ROOT, instance, new_home, partition_counts, run, start

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = "2026-01-06"
PARTITION = f"{DAY}|{MODEL}"
KILL_DEFINITIONS = ["-f", str(ROOT / "monitoring_pipeline_tests" / "kill_definitions.py"), "-a", "defs"]


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    """What one uninterrupted run of the window leaves: rows per (table, asset_key, partition)."""
    home = new_home(tmp_path_factory.mktemp("complete") / "home")
    code, out = run(home, str(home / "w.duckdb"), DAY)
    assert code == 0, out[-3000:]
    return partition_counts(str(home / "w.duckdb"))


def kill_in_write(home, warehouse, point: str, tmp_path) -> tuple[str, str]:
    """Run the window with the write of ``point`` stopped inside its transaction; SIGKILL the
    run's process group there. Returns (the step that was writing, the killed Dagster run id)."""
    paused = tmp_path / f"paused-{time.monotonic_ns()}"
    job = start(home, warehouse, DAY, definitions=KILL_DEFINITIONS, name=paused.name,
                env={"MONITORING_TEST_PAUSE_IN": point, "MONITORING_TEST_PAUSED": str(paused)})
    while not paused.exists():  # the runner's timeout bounds this; a run that ends without pausing fails
        assert job.process.poll() is None, f"the run ended before pausing in {point}:\n{job.log.read_text()[-3000:]}"
        time.sleep(0.2)
    os.killpg(job.process.pid, signal.SIGKILL)
    assert job.process.wait(timeout=120) == -signal.SIGKILL
    with instance(home) as inst:
        started = [r.dagster_run for r in inst.get_run_records() if r.dagster_run.status.value == "STARTED"]
    assert len(started) == 1, "the killed run is left STARTED in the instance"
    return paused.read_text(), started[0].run_id


def release(home, run_id: str) -> None:
    """What the daemon's run monitoring does for a dead run: the run is failed and the pool slot
    its step held is freed (until then the slot stays claimed, and with the DuckDB limit of 1
    every later writer would wait for it)."""
    with instance(home) as inst:
        held = inst.event_log_storage.get_concurrency_info("warehouse").claimed_slots
        assert [s.run_id for s in held] == [run_id], held
        inst.report_run_failed(inst.get_run_by_id(run_id), message="killed with SIGKILL by the test")
        inst.event_log_storage.free_concurrency_slots_for_run(run_id)
        assert inst.event_log_storage.get_concurrency_info("warehouse").claimed_slots == []


def all_or_nothing(counts: dict, complete: dict) -> dict:
    """The (table, asset_key, partition) keys of a complete run whose rows are neither all there
    nor absent, and any key a complete run does not have."""
    wrong = {k: (counts.get(k, 0), n) for k, n in complete.items() if counts.get(k, 0) not in (0, n)}
    wrong.update({k: (n, None) for k, n in counts.items() if k not in complete})
    return wrong


def window_rows(warehouse, table: str, asset_key: str) -> list[tuple]:
    frame = open_warehouse(warehouse).read(f"SELECT * FROM {table} WHERE asset_key = ? AND partition_key = ?",
                                           [asset_key, PARTITION])
    return sorted(map(tuple, frame.astype(str).values.tolist()))


@pytest.mark.parametrize("point", ["_write_drift", "store_reference_set"])
def test_a_run_killed_mid_write_leaves_no_half_written_window(point, warehouse_target, tmp_path, complete):
    duckdb = "://" not in warehouse_target
    home = new_home(tmp_path / "home", pool_limit=None if duckdb else 8)  # the pool as each backend has it

    step, run_id = kill_in_write(home, warehouse_target, point, tmp_path)
    counts = partition_counts(warehouse_target)
    assert all_or_nothing(counts, complete) == {}
    if point == "_write_drift":  # the killed transaction's rows are not there; the steps before it are whole
        assert step in ("data_drift_report", "prediction_drift_report", "concept_drift_report")
        assert counts.get(("ml_drift_history", step, PARTITION), 0) == 0
        assert counts[("ml_performance_metrics", "traffic_window", PARTITION)] > 0
    else:  # the reference is stored by the window's first step, in one transaction: no part of it
        assert step == "traffic_window"
        assert [k for k in counts if k[1] == "reference_profile"] == []
        assert open_warehouse(warehouse_target).read("SELECT count(*) AS n FROM reference_sets")["n"][0] == 0
    release(home, run_id)

    code, out = run(home, warehouse_target, DAY)
    assert code == 0, out[-3000:]
    assert partition_counts(warehouse_target) == complete

    if point == "_write_drift":  # killed while a rerun replaces the window's rows: the old rows, whole
        before = {s: window_rows(warehouse_target, "ml_drift_history", s)
                  for s in ("data_drift_report", "prediction_drift_report", "concept_drift_report")}
        step, run_id = kill_in_write(home, warehouse_target, point, tmp_path)
        assert window_rows(warehouse_target, "ml_drift_history", step) == before[step] != []
        assert all_or_nothing(partition_counts(warehouse_target), complete) == {}
        release(home, run_id)
        code, out = run(home, warehouse_target, DAY)
        assert code == 0, out[-3000:]
        assert partition_counts(warehouse_target) == complete
