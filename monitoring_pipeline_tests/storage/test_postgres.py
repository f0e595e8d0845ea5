"""The PostgreSQL connection wrapper answers as DuckDB's connection does, and what only PostgreSQL
has (concurrent migrations and writers, its time zone, the throwaway test server) works."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.dialect import arg_max, ddl, in_list, placeholders
from monitoring_pipeline.storage.runs import register_run
from monitoring_pipeline.storage.schema import LATEST, MIGRATIONS
from monitoring_pipeline.storage.warehouse import redact
from monitoring_pipeline_tests.warehouses import needs_postgres

ROOT = Path(__file__).resolve().parents[2]


def test_placeholders_are_translated_outside_literals_and_percent_signs_doubled():
    assert placeholders("SELECT ? , '?' , \"a?\" , x LIKE 'a%' -- why?\n, ?") == \
        "SELECT %s , '?' , \"a?\" , x LIKE 'a%%' -- why?\n, %s"
    assert placeholders("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', %s"
    assert ddl("x DOUBLE, y DOUBLE PRECISION, z double", "postgres") == \
        "x DOUBLE PRECISION, y DOUBLE PRECISION, z DOUBLE PRECISION"
    assert ddl("x DOUBLE", "duckdb") == "x DOUBLE"
    assert in_list("a", 3) == "a IN (?, ?, ?)" and in_list("a", 0) == "false"
    with pytest.raises(ValueError, match="dialect must be one of"):
        arg_max("a", "b", "sqlite")


def test_a_url_is_shown_without_its_password():
    assert redact("postgresql://ana:pw@db:5432/w?sslmode=require&password=pw2") == \
        "postgresql://ana@db:5432/w?sslmode=require"
    assert redact("postgres://db/w") == "postgres://db/w"


def test_parameters_literals_and_counts_answer_the_same_on_both(warehouse_target):
    wh = open_warehouse(warehouse_target)
    row = wh.read("""SELECT '?' AS q, ? AS p, CASE WHEN 'abc' LIKE 'a%' THEN 1 ELSE 0 END AS l, ? IS NULL AS n,
                            CAST(? AS DOUBLE PRECISION) / 2 AS half, 7 / CAST(2 AS DOUBLE PRECISION) AS div""",
                  ["x", None, 3]).iloc[0].to_dict()
    assert row == {"q": "?", "p": "x", "l": 1, "n": True, "half": 1.5, "div": 3.5}

    def work(conn):
        conn.execute("INSERT INTO runs (run_name) VALUES (?), (?), (?)", ["a", "b", "c"])
        assert conn.execute("UPDATE runs SET task_name = 't' WHERE run_name <> ?", ["c"]).fetchone() == (2,)
        assert conn.execute("DELETE FROM runs WHERE run_name = ?", ["a"]).fetchall() == [(1,)]
        return conn.execute("SELECT run_name FROM runs ORDER BY run_id").fetchall()

    assert wh.write(work) == [("b",), ("c",)]

    def many(conn):  # batched INSERTs (2,500 rows: three statements on PostgreSQL) and a row-by-row UPDATE
        conn.executemany("INSERT INTO runs (run_name, task_name) VALUES (?, CAST(? AS VARCHAR))",
                         [[f"n{i}", None if i % 2 else "even"] for i in range(2500)])
        conn.executemany("UPDATE runs SET task_name = ? WHERE run_name = ?", [["x", "n1"], ["y", "n2"]])

    wh.write(many)
    counts = wh.read("SELECT task_name, count(*) AS n FROM runs WHERE run_name LIKE 'n%' GROUP BY 1 "
                     "ORDER BY 1 NULLS LAST")
    assert counts.fillna("none").values.tolist() == [["even", 1249], ["x", 1], ["y", 1], ["none", 1249]]
    assert wh.read(f"SELECT run_name FROM runs WHERE {in_list('run_name', 2)} ORDER BY 1", ["c", "z"])[
        "run_name"].tolist() == ["c"]


def test_json_comes_back_as_the_text_stored(warehouse_target):
    wh = open_warehouse(warehouse_target)
    text = '{"b": 1,  "a": [2, {"z": null}], "é": "ü"}'  # key order and spacing kept, as DuckDB keeps them
    wh.write(lambda conn: conn.execute("INSERT INTO runs (run_name, config) VALUES ('r', ?)", [text]))
    assert wh.read("SELECT config FROM runs")["config"][0] == text
    with wh.connect() as conn:
        assert conn.execute("SELECT config, (config -> 'a') ->> 0 FROM runs").fetchone() == (text, "2")


def test_a_failed_transaction_leaves_nothing_and_the_next_one_works(warehouse_target):
    wh = open_warehouse(warehouse_target)

    def fail(conn):
        conn.execute("INSERT INTO runs (run_name) VALUES ('lost')")
        raise ValueError("the work failed")

    with pytest.raises(ValueError, match="the work failed"):
        wh.write(fail)
    with pytest.raises(Exception) as caught:  # a failed statement: its transaction is rolled back too
        wh.write(lambda conn: [conn.execute("INSERT INTO runs (run_name) VALUES ('lost')"),
                               conn.execute("INSERT INTO runs (run_name) VALUES (NULL)")])
    assert "null" in str(caught.value).lower()
    register_run(wh, "kept")
    assert wh.read("SELECT run_name FROM runs")["run_name"].tolist() == ["kept"]


ALL_TYPES = """CREATE TABLE every_type (i INTEGER, b BIGINT, d DOUBLE, v VARCHAR, j JSON, ts TIMESTAMP,
                                        bo BOOLEAN, dd DATE)"""
ROWS = [[1, 2, 1.5, "a", '{"x": 1}', datetime(2026, 1, 2, 3, 4, 5), True, "2026-01-02"],
        [None, None, None, None, None, None, None, None],
        [3, 2 ** 40, -0.25, "c", "[]", datetime(9999, 12, 31), False, "1970-01-01"]]
QUERIES = ["SELECT * FROM every_type ORDER BY i NULLS LAST",
           "SELECT * FROM every_type WHERE i IS NOT NULL ORDER BY i",  # no NULLs: plain numpy dtypes
           "SELECT * FROM every_type WHERE i IS NULL",  # only NULLs
           "SELECT * FROM every_type WHERE false",  # no rows
           """SELECT count(*) AS n, sum(b) AS total, avg(i) AS mean, max(ts) AS last, bool_and(bo) AS every,
                     CAST(max(dd) AS VARCHAR) AS day FROM every_type"""]


@needs_postgres
def test_a_postgres_frame_has_duckdbs_values_and_dtypes(tmp_path, postgres_url):
    frames = {}
    for target in (str(tmp_path / "w.duckdb"), postgres_url):
        wh = open_warehouse(target)

        def load(conn):
            conn.execute(ddl(ALL_TYPES, wh.dialect))
            conn.executemany("INSERT INTO every_type VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ROWS)

        wh.write(load)
        frames[wh.dialect] = [wh.read(q) for q in QUERIES]
    for query, duck, pg in zip(QUERIES, frames["duckdb"], frames["postgres"]):
        pd.testing.assert_frame_equal(pg, duck, check_dtype=True, obj=query)


@needs_postgres
def test_a_registered_frame_reads_back_as_in_duckdb(tmp_path, postgres_url):
    frame = pd.DataFrame({"n": [1, 2, 3], "x": [0.5, np.nan, 2.0], "s": ["a", None, "c"],
                          "t": pd.to_datetime(["2026-01-02 10:00", None, "2026-01-03 00:00"]), "ok": [True, False, True],
                          "big": pd.array([1, None, 3], dtype="Int64")})
    out = {}
    for target in (str(tmp_path / "w.duckdb"), postgres_url):
        wh = open_warehouse(target)

        def read(conn):
            conn.register("_frame", frame)
            rows = conn.execute("SELECT n, x IS NULL, s, t, ok, big FROM _frame ORDER BY n").fetchall()
            conn.unregister("_frame")
            return rows

        out[wh.dialect] = wh.write(read)
    assert out["postgres"] == out["duckdb"]
    assert out["postgres"][1] == (2, True, None, None, False, None)  # NaN, None and NaT are NULL
    with pytest.raises(ValueError, match="column 'd' holds dict values"):
        open_warehouse(postgres_url).write(lambda conn: conn.register("_bad", pd.DataFrame({"d": [{"a": 1}]})))


MIGRATOR = textwrap.dedent("""
    import os, sys, time
    from monitoring_pipeline.storage import open_warehouse

    print("ready", flush=True)
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.005)
    print(open_warehouse(sys.argv[1]).read("SELECT max(version) AS v FROM schema_version")["v"][0], flush=True)
""")


def _barrier_processes(script: str, argvs: list[list[str]], go: Path) -> list[str]:
    """Start one process per argv, let them go at once, and return their last output lines."""
    procs = [subprocess.Popen([sys.executable, "-c", script, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT) for argv in argvs]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
    go.touch()
    outputs = [proc.communicate(timeout=600) for proc in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-2000:] for _, err in outputs]
    return [out.strip().splitlines()[-1] for out, _ in outputs]


@needs_postgres
def test_processes_migrating_a_new_database_at_once_apply_each_migration_once(postgres_url, tmp_path):
    go = tmp_path / "go"
    assert _barrier_processes(MIGRATOR, [[postgres_url, str(go)]] * 4, go) == [str(LATEST)] * 4
    wh = open_warehouse(postgres_url)
    versions = wh.read("SELECT version, name FROM schema_version ORDER BY version")
    assert versions.values.tolist() == [[n, name] for n, name, _ in MIGRATIONS]
    views = wh.read("SELECT count(*) AS n FROM information_schema.views WHERE table_schema = current_schema()")
    assert views["n"][0] == 4  # drift_trend, performance_trend, alert_delivery_status, estimate_errors


WRITER = textwrap.dedent("""
    import os, sys, time
    from monitoring_pipeline.storage import open_warehouse
    from monitoring_pipeline.storage.results import replace_drift

    target, go, name = sys.argv[1:4]
    report = {"features": [{"name": f"f{i}", "method": "psi", "statistic": i, "p_value_adjusted": 0.5,
                            "p_value": 0.5, "effect_size": 0.1, "threshold": 0.2, "severity": "ok",
                            "drifted": False} for i in range(5)]}
    wh = open_warehouse(target)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    for i in range(15):
        replace_drift(wh, report, "data", model_name="m", model_version=name, baseline_period="ref",
                      current_period="2026-01-02", asset_key="data_drift_report", partition_key="2026-01-02|m",
                      run_id=i)
    print("done", flush=True)
""")


def _replace_partition(conn, version: str) -> None:
    conn.execute("DELETE FROM ml_drift_history WHERE asset_key = 'a' AND partition_key = 'p'")
    conn.executemany("""INSERT INTO ml_drift_history (drift_type, feature_name, drift_detected, model_name,
                            model_version, asset_key, partition_key) VALUES ('data', ?, false, 'm', ?, 'a', 'p')""",
                     [[f"f{i}", version] for i in range(5)])


@needs_postgres
def test_a_replace_that_overlaps_another_is_retried_not_doubled(postgres_url):
    """The second of two overlapping replaces of one partition waits for the first, then loses a
    serialization conflict and is run again whole: the partition holds one copy. (Under READ
    COMMITTED its DELETE would not see the first one's new rows and both copies would stay.)"""
    wh = open_warehouse(postgres_url)
    wh.write(lambda conn: _replace_partition(conn, "v0"))
    first_written, attempts, errors = threading.Event(), [], []

    def first(conn):
        _replace_partition(conn, "v1")
        first_written.set()
        with wh.connect() as watch:  # commit only once the second is waiting for this one's rows
            while not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND wait_event_type = 'Lock'").fetchone()[0]:
                time.sleep(0.01)

    def second(conn):
        attempts.append(1)
        _replace_partition(conn, "v2")

    def run(work):
        try:
            wh.write(work)
        except Exception as error:  # recorded: the test fails on it below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(first,))]
    threads[0].start()
    first_written.wait()
    threads.append(threading.Thread(target=run, args=(second,)))
    threads[1].start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = wh.read("SELECT model_version, count(*) AS n FROM ml_drift_history GROUP BY 1")
    assert rows.values.tolist() == [["v2", 5]] and len(attempts) == 2


@needs_postgres
def test_two_processes_replacing_one_partition_at_once_both_finish_and_leave_one_copy(postgres_url, tmp_path):
    """Serializable transactions: the processes conflict, the loser is retried whole (no error reaches
    the caller), and the partition holds one write's rows."""
    open_warehouse(postgres_url).read("SELECT 1")
    go = tmp_path / "go"
    assert _barrier_processes(WRITER, [[postgres_url, str(go), "a"], [postgres_url, str(go), "b"]], go) == \
        ["done", "done"]
    rows = open_warehouse(postgres_url).read("SELECT model_version, feature_name FROM ml_drift_history")
    assert len(rows) == 5 and rows["model_version"].nunique() == 1 and sorted(rows["feature_name"]) == [
        f"f{i}" for i in range(5)]


CLOCKS = textwrap.dedent("""
    import json, sys
    from datetime import datetime
    from monitoring_pipeline.storage import open_warehouse
    from monitoring_pipeline.storage.runs import get_run, register_run

    out = {}
    for target in sys.argv[1:]:
        wh = open_warehouse(target)
        out[wh.dialect] = str(get_run(wh, register_run(wh, "clock"))["started_at"])
    out["now"] = str(datetime.now())
    print(json.dumps(out))
""")


@needs_postgres
def test_stored_times_are_the_local_wall_clock_as_in_duckdb(tmp_path, postgres_url):
    env = {**os.environ, "TZ": "Asia/Kolkata"}  # UTC+05:30 all year
    out = subprocess.run([sys.executable, "-c", CLOCKS, str(tmp_path / "w.duckdb"), postgres_url], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    times = {k: datetime.fromisoformat(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}
    utc_now = datetime.now(timezone.utc).replace(tzinfo=None)
    for backend in ("duckdb", "postgres"):
        assert abs((times[backend] - times["now"]).total_seconds()) < 120  # the same wall clock...
        assert abs((times[backend] - utc_now).total_seconds() - 5.5 * 3600) < 120  # ...which is not UTC's


KILLED = textwrap.dedent("""
    import json
    from monitoring_pipeline_tests.postgres_server import PostgresServer

    server = PostgresServer().start()
    pid = (server.datadir / "postmaster.pid").read_text().split()[0]
    print(json.dumps({"root": str(server.root), "pid": int(pid), "url": server.url()}), flush=True)
    input()  # killed while waiting here
""")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@needs_postgres
def test_a_test_process_killed_outright_leaves_no_server_running():
    proc = subprocess.Popen([sys.executable, "-c", KILLED], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    server = json.loads(proc.stdout.readline())
    assert Path(server["root"]).is_dir() and _alive(server["pid"])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 120  # a guard against hanging, not a limit on the test: it stops in ~1 s
    while (_alive(server["pid"]) or Path(server["root"]).exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server["pid"]), "the server outlived the killed test process"
    assert not Path(server["root"]).exists()


@needs_postgres
def test_the_configured_url_selects_postgres_everywhere(postgres_url, tmp_path, monkeypatch):
    from monitoring_pipeline.defs.resources import WarehouseResource
    from monitoring_pipeline.lib.settings import warehouse, warehouse_path

    monkeypatch.setenv("MONITORING_WAREHOUSE", postgres_url)
    assert warehouse_path() == postgres_url  # as given: a Path would fold "//"
    assert warehouse().dialect == "postgres" and warehouse(read_only=True).read_only
    assert WarehouseResource().get().url == postgres_url
    local = tmp_path / "w.duckdb"
    assert WarehouseResource(path=str(local)).get().path == local  # the resource's path wins
    monkeypatch.setenv("MONITORING_WAREHOUSE", str(local))
    assert WarehouseResource(path=postgres_url).get().dialect == "postgres"
    assert warehouse_path() == local and warehouse().dialect == "duckdb"
