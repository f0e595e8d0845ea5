"""The warehouse on both backends (``warehouse_target``); the DuckDB file's own failures (locks, bad
bytes) and PostgreSQL's (server down, wrong password, locks held by another transaction) each
on their backend."""

import subprocess
import sys
import textwrap
from dataclasses import replace

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import psycopg
import pytest

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.core.alert_rules import drift_alerts
from monitoring_pipeline.storage import Warehouse, WarehouseError, open_warehouse
from monitoring_pipeline.storage import schema
from monitoring_pipeline.storage.dialect import is_constraint_violation
from monitoring_pipeline.storage.results import (
    _status,
    acknowledge_alert,
    alert_history,
    open_alerts,
    replace_comparison,
    replace_drift,
    replace_metrics,
    resolve_alert,
    upsert_alerts,
)
from monitoring_pipeline.storage.runs import (
    get_run,
    load_profile,
    register_run,
    run_for_dagster,
    save_artifact,
    save_profile,
)
from monitoring_pipeline.storage.schema import LATEST, migrate
from monitoring_pipeline_tests.warehouses import bare_connection, needs_postgres


@pytest.fixture
def wh(warehouse_target):
    return open_warehouse(warehouse_target)


def count(wh, table):
    return int(wh.read(f"SELECT count(*) AS n FROM {table}")["n"][0])


def test_an_empty_file_is_created_and_migrated(wh):
    assert wh.dialect == "postgres" or not wh.path.exists()
    assert wh.read("SELECT max(version) AS v FROM schema_version")["v"][0] == LATEST
    tables = set(wh.read("SELECT table_name FROM information_schema.tables")["table_name"])
    assert {"runs", "artifacts", "inference_log", "labels", "ml_drift_history", "ml_performance_metrics",
            "ml_monitoring_alerts", "model_comparisons", "model_registry", "retraining_requests",
            "drift_trend", "performance_trend"} <= tables


def test_migrating_again_changes_nothing(warehouse_target):
    first = open_warehouse(warehouse_target)
    register_run(first, "a")
    with bare_connection(warehouse_target) as conn:
        assert migrate(conn) == LATEST
    assert count(first, "runs") == 1
    assert wh_versions(first) == list(range(1, LATEST + 1))


def wh_versions(wh) -> list[int]:
    return wh.read("SELECT version FROM schema_version ORDER BY version")["version"].tolist()


def test_runs_and_profiles_round_trip(wh):
    rng = np.random.default_rng(0)
    profile = compute_dataset_profile(pd.DataFrame({"x": rng.normal(size=100), "c": ["a", "b"] * 50}), "tabular")
    run_id = register_run(wh, "tier5_validation", task_name="digits", config={"tier": "5"})
    assert get_run(wh, run_id)["config"] == {"tier": "5"}
    artifact = save_profile(wh, profile, "reference_inputs", run_id=run_id, model_name="m", model_version="1")
    assert load_profile(wh, artifact) == profile
    with pytest.raises(ValueError, match="not in the warehouse"):
        load_profile(wh, 999)
    report = save_artifact(wh, "report", "x", payload={"a": 1})
    with pytest.raises(ValueError, match="not a profile"):
        load_profile(wh, report)


def test_run_for_dagster_is_created_once_per_model(wh):
    a = run_for_dagster(wh, "dagster-1", "monitoring_job", "m1")
    assert run_for_dagster(wh, "dagster-1", "monitoring_job", "m1") == a
    assert run_for_dagster(wh, "dagster-1", "monitoring_job", "m2") != a


def _report(shift):
    rng = np.random.default_rng(1)
    ref = compute_dataset_profile(pd.DataFrame({"x": rng.normal(size=3000), "y": rng.normal(size=3000)}), "tabular")
    cur = compute_dataset_profile(pd.DataFrame({"x": rng.normal(shift, 1, 3000), "y": rng.normal(size=3000)}),
                                  "tabular", reference=ref)
    return compare_profiles(ref, cur)


def test_result_writes_replace_their_partition(wh):
    report = _report(1.0)
    keys = dict(model_name="m", model_version="1", baseline_period="ref", current_period="2026-01-02",
                asset_key="data_drift_report", partition_key="2026-01-02|m", run_id=None)
    for _ in range(3):
        assert replace_drift(wh, report, "data", **keys) == 2
    replace_drift(wh, report, "data", **{**keys, "partition_key": "2026-01-03|m", "current_period": "2026-01-03"})
    assert count(wh, "ml_drift_history") == 4
    stored = wh.read("SELECT * FROM ml_drift_history WHERE feature_name = 'x' AND partition_key = '2026-01-02|m'")
    assert bool(stored["drift_detected"][0]) and stored["severity"][0] == "alert"
    trend = wh.read("SELECT * FROM drift_trend WHERE feature_name = 'x' ORDER BY day")
    assert list(trend["day"]) == ["2026-01-02", "2026-01-03"]
    metric_keys = dict(model_name="m", model_version="1", data_split="production", window_start=None,
                       window_end=None, estimated=False, asset_key="eval_metrics", partition_key="p", run_id=None)
    replace_metrics(wh, {"accuracy": 0.9, "per_class": {}, "roc_auc": None}, **metric_keys)
    replace_metrics(wh, {"accuracy": 0.8}, **metric_keys)
    assert wh.read("SELECT metric_value FROM ml_performance_metrics")["metric_value"].tolist() == [0.8]
    from monitoring_pipeline.core import compare_models

    comparison = compare_models({"accuracy": 0.8, "f1_macro": 0.7}, {"accuracy": 0.7, "f1_macro": 0.705})
    for _ in range(2):
        replace_comparison(wh, comparison, model_name="m", baseline_version="1", candidate_version="2",
                           asset_key="baseline_comparison", partition_key="p", run_id=None)
    rows = wh.read("SELECT metric_name, status, verdict FROM model_comparisons ORDER BY metric_name")
    assert rows.values.tolist() == [["accuracy", "regressed", "regressed"], ["f1_macro", "unchanged", "regressed"]]


def test_alerts_upsert_and_keep_acknowledgements(wh):
    alerts = drift_alerts(_report(1.0), "data", model_name="m", window="2026-01-02")
    assert len(alerts) == 1 and alerts[0].severity == "critical"
    keys = dict(asset_key="monitoring_alerts", partition_key="2026-01-02|m", run_id=None)
    upsert_alerts(wh, alerts, **keys)
    upsert_alerts(wh, alerts, **keys)
    assert count(wh, "ml_monitoring_alerts") == 1
    assert acknowledge_alert(wh, alerts[0].alert_id, "ana")
    assert not acknowledge_alert(wh, alerts[0].alert_id, "bob")  # already acknowledged
    upsert_alerts(wh, [], **keys)  # the window no longer raises it
    kept = wh.read("SELECT acknowledged_by FROM ml_monitoring_alerts")
    assert kept["acknowledged_by"].tolist() == ["ana"]
    assert open_alerts(wh).empty
    fresh = drift_alerts(_report(1.0), "data", model_name="m", window="2026-01-03")
    upsert_alerts(wh, fresh, asset_key="monitoring_alerts", partition_key="2026-01-03|m", run_id=None)
    upsert_alerts(wh, [], asset_key="monitoring_alerts", partition_key="2026-01-03|m", run_id=None)
    assert count(wh, "ml_monitoring_alerts") == 2  # no alert is ever deleted: both were resolved
    assert set(wh.read("SELECT status FROM ml_monitoring_alerts")["status"]) == {"resolved"}


def alert_rows(wh) -> dict:
    rows = wh.read("SELECT * FROM ml_monitoring_alerts ORDER BY alert_id").to_dict("records")
    return {r["alert_id"]: r for r in rows}


def test_an_alert_a_rerun_no_longer_raises_is_resolved_with_time_and_reason(wh):
    [drift] = drift_alerts(_report(1.0), "data", model_name="m", window="2026-01-02")
    [other] = drift_alerts(_report(1.0), "data", model_name="m", window="2026-01-03")
    keys = dict(asset_key="monitoring_alerts", partition_key="2026-01-02|m")
    upsert_alerts(wh, [drift], **keys, run_id=6)
    upsert_alerts(wh, [other], asset_key="monitoring_alerts", partition_key="2026-01-03|m", run_id=6)
    before = wh.read("SELECT CAST(current_timestamp AS TIMESTAMP) AS t")["t"][0]
    upsert_alerts(wh, [], **keys, run_id=7)  # the rerun of the window no longer raises it
    rows = alert_rows(wh)
    assert len(rows) == 2  # still there
    row = rows[drift.alert_id]
    assert row["status"] == "resolved" and row["resolved_at"] >= before
    assert row["resolution"] == "no longer raised by monitoring_alerts (run 7)"
    assert row["message"] == drift.message and row["acknowledged_by"] is None
    assert rows[other.alert_id]["status"] == "open"  # another window is untouched
    assert open_alerts(wh)["alert_id"].tolist() == [other.alert_id]
    assert set(alert_history(wh)["alert_id"]) == {drift.alert_id, other.alert_id}
    assert alert_history(wh, "nobody").empty
    upsert_alerts(wh, [], **keys, run_id=8)  # already resolved: its time and reason stay
    assert alert_rows(wh)[drift.alert_id]["resolution"].endswith("(run 7)")
    upsert_alerts(wh, [], asset_key="another_check", partition_key="2026-01-03|m", run_id=8)
    assert alert_rows(wh)[other.alert_id]["status"] == "open"  # another asset's write does not resolve it


def test_a_resolved_alert_raised_again_reopens_with_fresh_content(wh):
    [drift] = drift_alerts(_report(1.0), "data", model_name="m", window="2026-01-02")
    keys = dict(asset_key="monitoring_alerts", partition_key="2026-01-02|m")
    upsert_alerts(wh, [drift], **keys, run_id=1)
    upsert_alerts(wh, [], **keys, run_id=2)
    assert alert_rows(wh)[drift.alert_id]["status"] == "resolved"
    back = replace(drift, message="drift is back", severity="warning")
    assert upsert_alerts(wh, [back], **keys, run_id=3) == 1
    row = alert_rows(wh)[drift.alert_id]
    assert (row["status"], row["message"], row["severity"], row["run_id"]) == ("open", "drift is back", "warning", 3)
    assert pd.isna(row["resolved_at"]) and row["resolution"] is None
    assert open_alerts(wh)["alert_id"].tolist() == [drift.alert_id] and count(wh, "ml_monitoring_alerts") == 1
    assert resolve_alert(wh, drift.alert_id, "fixed upstream")
    upsert_alerts(wh, [drift], **keys, run_id=4)  # a manual resolution is re-opened by the finding too
    assert alert_rows(wh)[drift.alert_id]["status"] == "open"


def test_an_acknowledged_alert_no_longer_raised_is_resolved_and_keeps_its_acknowledgement(wh):
    [drift] = drift_alerts(_report(1.0), "data", model_name="m", window="2026-01-02")
    keys = dict(asset_key="monitoring_alerts", partition_key="2026-01-02|m")
    upsert_alerts(wh, [drift], **keys, run_id=1)
    assert acknowledge_alert(wh, drift.alert_id, "ana")
    upsert_alerts(wh, [replace(drift, message="changed")], **keys, run_id=2)  # raised again: left as it is
    row = alert_rows(wh)[drift.alert_id]
    assert (row["status"], row["acknowledged_by"], row["message"], row["run_id"]) == (
        "acknowledged", "ana", drift.message, 2)
    acknowledged_at = row["acknowledged_at"]
    upsert_alerts(wh, [], **keys, run_id=3)
    row = alert_rows(wh)[drift.alert_id]
    assert row["status"] == "resolved" and row["resolution"] == "no longer raised by monitoring_alerts (run 3)"
    assert row["acknowledged_by"] == "ana" and row["acknowledged_at"] == acknowledged_at
    assert not acknowledge_alert(wh, drift.alert_id, "bob")  # only an open alert can be acknowledged
    upsert_alerts(wh, [drift], **keys, run_id=4)  # back: still acknowledged by ana, so it is not re-sent
    row = alert_rows(wh)[drift.alert_id]
    assert (row["status"], row["acknowledged_by"], row["resolution"]) == ("acknowledged", "ana", None)
    assert open_alerts(wh).empty


def test_resolving_an_alert_by_hand(wh):
    [drift] = drift_alerts(_report(1.0), "data", model_name="m", window="2026-01-02")
    upsert_alerts(wh, [drift], asset_key="monitoring_alerts", partition_key="2026-01-02|m", run_id=None)
    with pytest.raises(ValueError, match="reason"):
        resolve_alert(wh, drift.alert_id, "  ")
    assert not resolve_alert(wh, "no-such-alert", "x")
    assert resolve_alert(wh, drift.alert_id, "false positive: sensor recalibrated")
    assert not resolve_alert(wh, drift.alert_id, "again")  # already resolved
    row = alert_rows(wh)[drift.alert_id]
    assert row["status"] == "resolved" and row["resolution"] == "false positive: sensor recalibrated"
    assert pd.notna(row["resolved_at"]) and open_alerts(wh).empty
    with pytest.raises(ValueError, match="status"):
        _status("closed")


def test_a_version_3_warehouse_migrates_to_the_alert_lifecycle(warehouse_target, monkeypatch):
    with monkeypatch.context() as patch, bare_connection(warehouse_target) as conn:  # the code at schema version 3
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
        patch.setattr(schema, "LATEST", 3)
        assert schema.migrate(conn) == 3
        columns = "alert_id, severity, alert_type, model_name, message, partition_key, asset_key, acknowledged_at, " \
                  "acknowledged_by"
        conn.executemany(f"INSERT INTO ml_monitoring_alerts ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            ["open1", "critical", "DRIFT_DETECTED", "m", "drift", "p|m", "monitoring_alerts", None, None],
            ["acked", "warning", "SLO_BREACH", "m", "slow", "p|m", "monitoring_alerts", "2026-01-02 10:00", "ana"]])
    wh = open_warehouse(warehouse_target)  # opened by the current code: migrated to the latest version
    assert wh.read("SELECT max(version) AS v FROM schema_version")["v"][0] == LATEST >= 4
    rows = alert_rows(wh)
    assert {k: r["status"] for k, r in rows.items()} == {"open1": "open", "acked": "acknowledged"}
    assert rows["acked"]["acknowledged_by"] == "ana" and pd.isna(rows["open1"]["resolved_at"])
    columns = wh.read("""SELECT column_name, is_nullable, column_default FROM information_schema.columns
                         WHERE table_name = 'ml_monitoring_alerts'""").set_index("column_name")
    assert columns.loc["status", "is_nullable"] == "NO" and "open" in columns.loc["status", "column_default"]
    assert {"resolved_at", "resolution"} <= set(columns.index)
    with pytest.raises(Exception) as caught:  # the primary key survived the ALTERs
        wh.write(lambda c: c.execute("INSERT INTO ml_monitoring_alerts (alert_id, severity, alert_type, model_name,"
                                     " message) VALUES ('open1', 'info', 'SLO_BREACH', 'm', 'dup')"))
    assert is_constraint_violation(caught.value), caught.value
    upsert_alerts(wh, [], asset_key="monitoring_alerts", partition_key="p|m", run_id=5)  # works on the old rows
    rows = alert_rows(wh)
    assert {k: r["status"] for k, r in rows.items()} == {"open1": "resolved", "acked": "resolved"}
    assert rows["acked"]["acknowledged_by"] == "ana"


def test_sql_takes_user_strings_as_parameters(wh):
    name = "m'; DROP TABLE runs; --"
    run_for_dagster(wh, "d", "job", name)
    assert count(wh, "runs") == 1
    assert wh.read("SELECT model_name FROM runs")["model_name"][0] == name


def test_a_second_process_waits_for_the_lock(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    register_run(wh, "first")
    holder = textwrap.dedent(f"""
        import duckdb, time, sys
        conn = duckdb.connect({str(wh.path)!r})
        conn.execute("INSERT INTO runs (run_name) VALUES ('holder')")
        print("locked", flush=True)
        time.sleep(2.0)
        conn.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    register_run(wh, "second")  # blocks until the holder lets go, then succeeds
    proc.wait(timeout=30)
    assert sorted(wh.read("SELECT run_name FROM runs")["run_name"]) == ["first", "holder", "second"]


def test_a_lock_held_past_the_timeout_raises(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb", timeout=0.5)
    register_run(wh, "first")
    holder = textwrap.dedent(f"""
        import duckdb, time
        conn = duckdb.connect({str(wh.path)!r})
        print("locked", flush=True)
        time.sleep(5.0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(WarehouseError, match="locked by another process") as caught:
            register_run(wh, "second")
        assert str(wh.path) in str(caught.value) and isinstance(caught.value.__cause__, duckdb.IOException)
    finally:
        proc.kill()
        proc.wait()


HOLDER = textwrap.dedent("""
    import os, sys, time
    from monitoring_pipeline.storage import open_warehouse

    target, statement, go = sys.argv[1:4]
    with open_warehouse(target).connect() as conn:
        conn.execute("BEGIN TRANSACTION")
        conn.execute(statement)
        print("holding", flush=True)
        while not os.path.exists(go):
            time.sleep(0.01)
        conn.execute("COMMIT")
    print("committed", flush=True)
""")


def _holder(target: str, statement: str, go) -> subprocess.Popen:
    """A process holding an open transaction that ran ``statement`` until ``go`` exists."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, target, statement, str(go)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.readline().strip() == "holding", proc.stderr.read()[-2000:]
    return proc


@needs_postgres
def test_postgres_writers_do_not_wait_for_each_other(postgres_url, tmp_path):
    """The counterpart of DuckDB's lock: another process's open write transaction does not hold this one up."""
    wh = open_warehouse(postgres_url)
    register_run(wh, "first")
    proc = _holder(postgres_url, "INSERT INTO runs (run_name) VALUES ('holder')", tmp_path / "go")
    try:
        register_run(wh, "second")  # committed while the holder's transaction is still open
        assert sorted(wh.read("SELECT run_name FROM runs")["run_name"]) == ["first", "second"]
    finally:
        (tmp_path / "go").touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.strip() == "committed", err[-2000:]
    assert sorted(wh.read("SELECT run_name FROM runs")["run_name"]) == ["first", "holder", "second"]


@needs_postgres
def test_postgres_a_lock_held_past_the_timeout_raises(postgres_url, tmp_path):
    register_run(open_warehouse(postgres_url), "first")
    proc = _holder(postgres_url, "LOCK TABLE runs IN ACCESS EXCLUSIVE MODE", tmp_path / "go")
    try:
        with pytest.raises(WarehouseError, match="locked by another transaction for 0.5 s") as caught:
            register_run(open_warehouse(postgres_url, timeout=0.5), "second")
        assert caught.value.name in str(caught.value) and "not-checked" not in str(caught.value)
        assert caught.value.__cause__.sqlstate == "55P03"  # lock_not_available
    finally:
        (tmp_path / "go").touch()
        proc.communicate(timeout=60)
    assert wh_runs(postgres_url) == ["first"]


def wh_runs(target) -> list[str]:
    return sorted(open_warehouse(target).read("SELECT run_name FROM runs")["run_name"])


@needs_postgres
def test_an_unusable_postgres_warehouse_raises_an_error_naming_the_url_without_its_password(postgres_server):
    from monitoring_pipeline_tests.postgres_server import GUARDED_PASSWORD, GUARDED_USER
    from monitoring_pipeline_tests.receivers import free_port

    database = postgres_server.create_database().rsplit("/", 1)[1]
    secret = "s3cret-Pa55"
    cases = {  # what is wrong -> what the error says
        f"postgresql://monitoring:{secret}@127.0.0.1:{free_port()}/{database}": "Connection refused",
        postgres_server.url(database, user=GUARDED_USER, password=secret): "password authentication failed",
        postgres_server.url("no_such_database", password=secret): 'database "no_such_database" does not exist',
        f"postgresql://monitoring:{secret}@127.0.0.1:not-a-port/{database}": "invalid integer value",
        f"postgres://monitoring@127.0.0.1:{postgres_server.port}/{database}?password={secret}&sslmode=bogus":
            "invalid sslmode value",
    }
    for url, cause in cases.items():
        for wh in (open_warehouse(url), open_warehouse(url, read_only=True)):
            with pytest.raises(WarehouseError, match=cause) as caught:
                wh.read("SELECT 1")
            message = str(caught.value)
            assert secret not in message and "\n" not in message and message.startswith(f"warehouse {wh.name}: ")
            assert wh.name.startswith(("postgresql://monitoring@", "postgresql://guarded@", "postgres://monitoring@"))
            assert isinstance(caught.value.__cause__, psycopg.Error) and caught.value.path is None
    right = open_warehouse(postgres_server.url(database, user=GUARDED_USER, password=GUARDED_PASSWORD))
    assert right.read("SELECT max(version) AS v FROM schema_version")["v"][0] == LATEST  # the guard is real


def test_a_file_that_cannot_be_used_raises_an_error_naming_the_path_and_the_cause(tmp_path):
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(WarehouseError, match="not a valid DuckDB database file") as caught:
        Warehouse(junk).read("SELECT 1")
    assert str(junk) in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value.__cause__, duckdb.Error)
    missing = tmp_path / "typo" / "w.duckdb"
    for wh in (Warehouse(missing, read_only=True), Warehouse(missing, create=False)):
        with pytest.raises(WarehouseError, match="no such file"):
            wh.read("SELECT 1")
    assert not missing.parent.exists()  # nothing was created


def test_a_read_only_warehouse_is_checked_not_migrated(warehouse_target, tmp_path, request, monkeypatch):
    register_run(open_warehouse(warehouse_target), "first")
    reader = open_warehouse(warehouse_target, read_only=True)
    assert reader.read("SELECT run_name FROM runs")["run_name"].tolist() == ["first"]
    with pytest.raises(Exception, match="read-only") as caught:
        reader.write(lambda conn: conn.execute("INSERT INTO runs (run_name) VALUES ('x')"))
    assert not isinstance(caught.value, WarehouseError)  # the statement's own error, the warehouse is fine
    module = "postgres" if reader.dialect == "postgres" else "warehouse"
    monkeypatch.setattr(f"monitoring_pipeline.storage.{module}.LATEST", LATEST + 1)
    with pytest.raises(WarehouseError, match=f"schema version {LATEST}, this code reads version {LATEST + 1}"):
        reader.read("SELECT 1")
    if reader.dialect == "postgres":
        plain = request.getfixturevalue("postgres_server").create_database()
    else:
        plain = str(tmp_path / "plain.duckdb")
        duckdb.connect(plain).close()
    with pytest.raises(WarehouseError, match="not a monitoring warehouse"):
        open_warehouse(plain, read_only=True).read("SELECT 1")
