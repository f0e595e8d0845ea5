"""Eight ``dagster job execute`` runs of monitoring_job at once (eight windows), through the real
CLI, on one warehouse: a DuckDB file with the embedded default's pool (one writing step at a
time, data/dagster_home/dagster.yaml), and a PostgreSQL database with the pool lifted. No run
fails, and the warehouse holds what the same eight windows run one after another hold: the
same rows per table and partition, and the same results.

The Dagster instance is SQLite under a fresh DAGSTER_HOME, initialised before the runs start
(runs racing to create it collide in Dagster's own migrations).
"""

import pytest

from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline_tests.cli_runs import (MODEL, content, instance, new_home, overlaps, partition_counts, pooled,
                                                run, start, step_intervals)
from monitoring_pipeline_tests.warehouses import needs_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAYS = [f"2026-01-{d:02d}" for d in range(5, 13)]
BLOCKED = "Step blocked by limit for pool warehouse"


def at_once(home, warehouse) -> list[tuple[int, str]]:
    runs = [start(home, warehouse, day) for day in DAYS]
    return [r.wait() for r in runs]


@pytest.fixture(scope="module")
def one_after_another(tmp_path_factory):
    """The eight windows run one after another on a DuckDB warehouse: what they must leave."""
    home = new_home(tmp_path_factory.mktemp("sequential") / "home")
    warehouse = str(home / "w.duckdb")
    for day in DAYS:
        code, out = run(home, warehouse, day)
        assert code == 0, out[-3000:]
    return {"counts": partition_counts(warehouse), "content": content(warehouse)}


def check_same_rows(warehouse, expected):
    counts = partition_counts(warehouse)
    differ = {k: (counts.get(k), v) for k, v in expected["counts"].items() if counts.get(k) != v}
    extra = {k: v for k, v in counts.items() if k not in expected["counts"]}
    assert not differ and not extra, f"rows differ from the runs one after another: {differ=} {extra=}"
    windows = {k[2] for k in counts if k[0] == "ml_drift_history"}
    assert windows == {f"{day}|{MODEL}" for day in DAYS}
    got = content(warehouse)
    for table, rows in expected["content"].items():
        assert got[table] == rows, f"{table}: the concurrent runs' results differ from the sequential runs'"


def check_runs_succeeded(home, warehouse, outputs):
    failed = [out[-3000:] for code, out in outputs if code != 0]
    assert not failed, failed[0]
    with instance(home) as inst:
        runs = {r.dagster_run.run_id: r.dagster_run.status.value for r in inst.get_run_records()}
    assert list(runs.values()) == ["SUCCESS"] * len(DAYS)
    # the warehouse's runs table: one row per Dagster run, none lost or doubled by the race
    recorded = open_warehouse(warehouse).read("SELECT dagster_run_id FROM runs")["dagster_run_id"]
    assert sorted(recorded) == sorted(runs)


def test_eight_runs_at_once_on_duckdb_take_turns_through_the_pool(tmp_path, one_after_another):
    home = new_home(tmp_path / "home")
    warehouse = str(tmp_path / "w.duckdb")
    outputs = at_once(home, warehouse)
    check_runs_succeeded(home, warehouse, outputs)
    # The pool did the serializing: steps waited for it, and no two steps that write the
    # warehouse ran at the same time in two runs (Dagster's own event times).
    assert sum(out.count(BLOCKED) for _, out in outputs) > 0
    writers = pooled(step_intervals(home))
    assert len(writers) >= len(DAYS) * 10 and overlaps(writers) == []
    with instance(home) as inst:
        slots = inst.event_log_storage.get_concurrency_info("warehouse")
    assert slots.slot_count == 1 and slots.claimed_slots == [] and slots.pending_steps == []
    check_same_rows(warehouse, one_after_another)


@needs_postgres
def test_eight_runs_at_once_on_postgres_write_together(tmp_path, postgres_url, one_after_another):
    home = new_home(tmp_path / "home", pool_limit=len(DAYS))
    outputs = at_once(home, postgres_url)
    check_runs_succeeded(home, postgres_url, outputs)
    assert sum(out.count(BLOCKED) for _, out in outputs) == 0  # one step per run: 8 slots never run out
    writers = pooled(step_intervals(home))
    assert len(writers) >= len(DAYS) * 10 and overlaps(writers)  # steps of different runs wrote at the same time
    check_same_rows(postgres_url, one_after_another)


# Ops that take the warehouse resource and stay out of the pool, and why.
OUTSIDE_THE_POOL = {
    "run_story": "closed_loop_job's one op runs child jobs in process: their steps would wait for the slot it held",
    "shard_profile": "a window's shards read (a served net's views), never write: they run side by side",
}


def test_every_step_that_writes_the_warehouse_is_in_the_pool():
    """The ops that take the warehouse resource are in the pool, except OUTSIDE_THE_POOL."""
    from monitoring_pipeline.definitions import defs
    from monitoring_pipeline.defs.resources import WAREHOUSE_POOL

    outside = set()
    for job in defs.get_repository_def().get_all_jobs():
        graph = job.graph
        for handle in graph.iterate_node_handles():
            op = graph.get_node(handle).definition
            if "warehouse" in getattr(op, "required_resource_keys", set()) and op.pool != WAREHOUSE_POOL:
                outside.add(op.name)
    assert outside == set(OUTSIDE_THE_POOL)


def test_a_step_waiting_for_the_pool_sleeps_until_its_next_check(tmp_path):
    """Dagster 1.13.27 answers 0 s for a step waiting for a slot, so the in-process executor spins
    (defs/pool_wait.py): with the package loaded, it waits until its next check, about 1 s."""
    import time

    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
    from dagster._core.test_utils import create_run_for_test

    import monitoring_pipeline.defs.resources  # noqa: F401 (what every code location of the project imports)

    with instance(new_home(tmp_path / "home")) as inst:
        holder, waiter = create_run_for_test(inst, job_name="a"), create_run_for_test(inst, job_name="b")
        with InstanceConcurrencyContext(inst, holder) as first, InstanceConcurrencyContext(inst, waiter) as second:
            assert first.claim("warehouse", "write")
            assert not second.claim("warehouse", "write")  # the limit of 1 (data/dagster_home/dagster.yaml)
            assert second.has_pending_claims()
            assert 0.5 < second.interval_to_next_pending_claim_check() <= 1.0
            first.free_step("write")
            time.sleep(second.interval_to_next_pending_claim_check())
            assert second.claim("warehouse", "write")  # the freed slot, at its next check
            second.free_step("write")
        assert inst.event_log_storage.get_concurrency_info("warehouse").claimed_slots == []
