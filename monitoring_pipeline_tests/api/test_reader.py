"""The API's snapshots of the warehouse (api/reader.py), without a server: what a snapshot holds,
when it is refreshed, and what a read gets while another process holds the warehouse for writing.
Each runs on both warehouse backends (``warehouse_target``); the DuckDB file lock's tests on DuckDB."""

import subprocess
import sys
from pathlib import Path

import pytest

from monitoring_pipeline.api.errors import Unavailable
from monitoring_pipeline.api.reader import Reader
from monitoring_pipeline.api.settings import ApiSettings
from monitoring_pipeline.storage import Warehouse, WarehouseError, open_warehouse
from monitoring_pipeline.storage.runs import insert_artifact
from monitoring_pipeline.storage.schema import LATEST
from monitoring_pipeline_tests.warehouses import needs_postgres


def _alert(conn, alert_id: str) -> None:
    conn.execute("""INSERT INTO ml_monitoring_alerts (alert_id, severity, alert_type, model_name, message)
                    VALUES (?, 'warning', 'DRIFT_DETECTED', 'm', 'drift')""", [alert_id])


def _ids(reader: Reader) -> list[str]:
    return sorted(reader.warehouse().read("SELECT alert_id FROM ml_monitoring_alerts")["alert_id"])


@pytest.fixture
def warehouse(warehouse_target) -> Warehouse:
    wh = open_warehouse(warehouse_target, timeout=5)

    def fill(conn):
        _alert(conn, "a1")
        conn.execute("""INSERT INTO inference_log (ts, model_name, request_id) VALUES (now(), 'm', 'r1')""")
        conn.execute("INSERT INTO labels (request_id, label) VALUES ('r1', '1')")
        insert_artifact(conn, "profile", "current_inputs", payload={"big": list(range(100))}, model_name="m")
        insert_artifact(conn, "report", "monitoring_summary", payload={"status": "ok"}, model_name="m")

    wh.write(fill)
    return wh


def _reader(wh: Warehouse, folder: Path, **overrides) -> Reader:
    settings = ApiSettings(warehouse=wh.url or wh.path, spool=folder / "spool", monitors=folder / "m.yaml",
                           **{"write_timeout": 5.0, "snapshot_max_age": 3600.0, **overrides})
    return Reader(settings)


def _settle(reader: Reader) -> None:
    """Wait for the background check or copy a read started (PostgreSQL's is always in the background)."""
    if reader._thread is not None:
        reader._thread.join()


def duckdb_only(warehouse: Warehouse) -> None:
    if warehouse.dialect != "duckdb":
        pytest.skip("DuckDB's file lock: a PostgreSQL writer never blocks the copy "
                    "(test_a_postgres_writer_does_not_hold_up_the_copy)")


class Holder:
    """Another process that holds the warehouse open for writing (in a transaction) until stopped."""

    def __init__(self, path: Path):
        code = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('BEGIN TRANSACTION'); "
                "c.execute(\"UPDATE ml_monitoring_alerts SET message = 'held'\"); print('held', flush=True); "
                "sys.stdin.readline(); c.execute('COMMIT')")
        self.process = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "held"

    def release(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.wait() == 0


def test_snapshot_holds_results_not_traffic_or_profiles(warehouse, tmp_path):
    reader = _reader(warehouse, tmp_path)
    try:
        wh = reader.warehouse()
        assert wh.read_only and wh.path != warehouse.path
        assert _ids(reader) == ["a1"]
        assert wh.read("SELECT max(version) AS v FROM schema_version")["v"][0] == LATEST
        assert wh.read("SELECT count(*) AS n FROM inference_log")["n"][0] == 0
        assert wh.read("SELECT count(*) AS n FROM labels")["n"][0] == 0
        assert list(wh.read("SELECT name FROM artifacts")["name"]) == ["monitoring_summary"]
        # the warehouse itself is untouched
        assert warehouse.read("SELECT count(*) AS n FROM inference_log")["n"][0] == 1
        assert reader.as_of.tzinfo is not None
    finally:
        reader.close()


def test_refresh_shows_a_write_and_old_snapshots_are_cleaned_up(warehouse, tmp_path):
    reader = _reader(warehouse, tmp_path)
    try:
        first = reader.snapshot()
        warehouse.write(lambda conn: _alert(conn, "a2"))
        assert _ids(reader) == ["a1"]  # younger than snapshot_max_age: the same snapshot
        reader.refresh()
        assert _ids(reader) == ["a1", "a2"]
        assert reader.snapshot().generation == first.generation + 1 and reader.as_of >= first.as_of
        assert first.path.exists()  # reads that began on it may still be reading
        folder = first.path.parent
    finally:
        reader.close()
    assert not folder.exists()


def test_a_changed_warehouse_is_copied_again_in_the_background(warehouse, tmp_path):
    reader = _reader(warehouse, tmp_path, snapshot_max_age=0.0)
    try:
        first = reader.snapshot()
        assert reader.snapshot() is first  # unchanged warehouse: no new copy
        _settle(reader)
        assert reader._current is first
        warehouse.write(lambda conn: _alert(conn, "a2"))
        assert reader.snapshot() is first  # answered from the current one while the copy is made
        _settle(reader)
        assert reader.snapshot().generation == first.generation + 1
        assert _ids(reader) == ["a1", "a2"]
    finally:
        reader.close()


def test_the_first_read_while_a_run_holds_the_warehouse_is_unavailable(warehouse, tmp_path):
    duckdb_only(warehouse)
    reader = _reader(warehouse, tmp_path, write_timeout=0.5)
    holder = Holder(warehouse.path)
    try:
        with pytest.raises(Unavailable, match="held the warehouse for more than 0.5 s") as error:
            reader.warehouse()
        assert error.value.retry_after >= 1
    finally:
        holder.release()
    assert _ids(reader) == ["a1"]
    reader.close()


def test_reads_go_on_from_the_snapshot_while_a_run_holds_the_warehouse(warehouse, tmp_path):
    duckdb_only(warehouse)
    reader = _reader(warehouse, tmp_path, write_timeout=0.5, snapshot_max_age=0.0)
    try:
        first = reader.snapshot()
        warehouse.write(lambda conn: _alert(conn, "a2"))  # changed: every read wants a new copy
        holder = Holder(warehouse.path)
        try:
            for _ in range(5):
                assert _ids(reader) == ["a1"]
                reader._thread.join()  # the background copy gave up on the lock; the read did not wait
            assert reader.snapshot() is first
        finally:
            holder.release()
        reader._next_try = 0.0
        reader.snapshot()
        reader._thread.join()
        assert _ids(reader) == ["a1", "a2"]
        assert reader.warehouse().read("SELECT DISTINCT message FROM ml_monitoring_alerts")["message"][0] == "held"
    finally:
        reader.close()


def test_a_missing_warehouse_is_unavailable_with_its_path(tmp_path):
    reader = _reader(Warehouse(tmp_path / "none.duckdb"), tmp_path)
    with pytest.raises(Unavailable, match="none.duckdb does not exist yet"):
        reader.warehouse()
    assert not (tmp_path / "none.duckdb").exists()
    reader.close()


@needs_postgres
def test_a_postgres_database_without_the_warehouse_is_an_error_naming_it(postgres_url, tmp_path):
    reader = _reader(open_warehouse(postgres_url, create=False), tmp_path)
    database = postgres_url.rsplit("/", 1)[1]
    with pytest.raises(WarehouseError, match=f"{database}: not a monitoring warehouse") as error:
        reader.warehouse()
    assert "not-checked" not in str(error.value)  # the URL's password is not shown
    with pytest.raises(WarehouseError):  # still nothing created: the reader never migrates
        open_warehouse(postgres_url, read_only=True).read("SELECT 1")
    reader.close()


@needs_postgres
def test_a_postgres_writer_does_not_hold_up_the_copy(postgres_url, tmp_path):
    """PostgreSQL's copy reads one REPEATABLE READ view: a run's open transaction neither makes it
    wait nor shows in it; once committed, the next copy has it."""
    warehouse = open_warehouse(postgres_url, timeout=5)
    warehouse.write(lambda conn: _alert(conn, "a1"))
    reader = _reader(warehouse, tmp_path, write_timeout=0.5, snapshot_max_age=0.0)
    try:
        first = reader.snapshot()
        with warehouse.connect() as held:
            held.execute("BEGIN TRANSACTION")
            held.execute("UPDATE ml_monitoring_alerts SET message = 'held'")
            _alert(held, "a2")
            reader.refresh()  # within write_timeout (0.5 s), or a lock wait would fail it
            assert reader.snapshot().generation == first.generation + 1
            assert _ids(reader) == ["a1"]
            assert reader.warehouse().read("SELECT message FROM ml_monitoring_alerts")["message"][0] == "drift"
            held.execute("COMMIT")
        reader.snapshot()
        _settle(reader)  # the commit moved the server's transaction snapshot: copied again
        assert _ids(reader) == ["a1", "a2"]
        assert reader.warehouse().read("SELECT message FROM ml_monitoring_alerts WHERE alert_id = 'a1'")[
            "message"][0] == "held"
    finally:
        reader.close()


def test_the_apis_own_write_is_not_blocked_by_its_snapshots(warehouse, tmp_path):
    """The copy shares this process's DuckDB instance of the warehouse: a write from this process
    while a snapshot is being made (or held) succeeds."""
    duckdb_only(warehouse)
    reader = _reader(warehouse, tmp_path)
    try:
        reader.snapshot()
        src = reader._open_source()  # what a copy holds while it runs
        try:
            Warehouse(warehouse.path, timeout=1).write(lambda conn: _alert(conn, "a3"))
        finally:
            src.close()
        reader.refresh()
        assert _ids(reader) == ["a1", "a3"]
    finally:
        reader.close()


def test_cached_answers_last_one_snapshot(warehouse, tmp_path):
    reader = _reader(warehouse, tmp_path)
    calls = []

    def count(wh):
        calls.append(1)
        return len(wh.read("SELECT * FROM ml_monitoring_alerts"))

    try:
        assert reader.cached("n", count)[0] == 1
        assert reader.cached("n", count)[0] == 1 and len(calls) == 1
        warehouse.write(lambda conn: _alert(conn, "a2"))
        reader.refresh()
        assert reader.cached("n", count)[0] == 2 and len(calls) == 2
    finally:
        reader.close()
