"""End-to-end: the real dagster and monitoring-pipeline CLIs against a temporary DAGSTER_HOME and warehouse."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.schema import LATEST
from monitoring_pipeline_tests.dagster_home import init_dagster_home, is_initialised

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
MODEL = "breast_cancer_classifier"
RESULT_TABLES = ["artifacts", "ml_drift_history", "ml_performance_metrics", "ml_monitoring_alerts",
                 "model_comparisons"]

pytestmark = pytest.mark.integration


def env_for(tmp_path):
    return {**os.environ, "DAGSTER_HOME": str(tmp_path), "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb"),
            "MONITORING_MODELS": str(tmp_path / "models")}  # checkpoints load only from under it


def dagster(tmp_path, *args, background=False):
    command = [DAGSTER, "job", "execute", *args]
    if background:  # runs at once on a fresh home would race to create Dagster's storage
        if not is_initialised(tmp_path):
            init_dagster_home(tmp_path)
        return subprocess.Popen(command, cwd=tmp_path, env=env_for(tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=tmp_path, env=env_for(tmp_path), capture_output=True, text=True,
                          timeout=900)


def window(day: str) -> list[str]:
    return ["--tags", '{"dagster/partition": "%s|%s"}' % (day, MODEL)]


def counts(tmp_path) -> dict:
    wh = Warehouse(tmp_path / "w.duckdb")
    return {t: int(wh.read(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in RESULT_TABLES}


def test_monitoring_job_runs_and_reruns_a_window(tmp_path):
    out = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "monitoring_job", *window("2026-01-05"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RUN_SUCCESS" in out.stderr and "OK - " in out.stderr
    first = counts(tmp_path)
    # 64 drift rows: concept drift stores two whole-model signals (importance, performance) since issue 12
    assert first["ml_drift_history"] == 64 and first["artifacts"] == 8  # profiles, calibration sample, summary, gate, approval
    runs = Warehouse(tmp_path / "w.duckdb").read("SELECT run_name, dagster_run_id FROM runs")
    assert runs["run_name"].tolist() == ["monitoring_job"] and runs["dagster_run_id"][0]
    again = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "monitoring_job", *window("2026-01-05"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert counts(tmp_path) == first


def test_two_runs_at_once_on_one_warehouse_keep_every_row(tmp_path):
    # The race under test is the two runs' writes to one warehouse; the helper initialises
    # the fresh DAGSTER_HOME before starting them (see test_four_runs_at_once_on_a_fresh_home).
    procs = [dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "monitoring_job", *window(day), background=True)
             for day in ("2026-01-06", "2026-01-07")]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    wh = Warehouse(tmp_path / "w.duckdb")
    per_day = wh.read("""SELECT current_period, count(*) AS n FROM ml_drift_history
                         WHERE drift_type = 'data' GROUP BY ALL ORDER BY 1""")
    assert per_day.values.tolist() == [["2026-01-06", 30], ["2026-01-07", 30]]
    names = wh.read("SELECT name, count(*) AS n FROM artifacts GROUP BY ALL ORDER BY 1").values.tolist()
    assert names == [["current_inputs", 2], ["current_outputs", 2], ["monitoring_summary", 2],
                     ["reference_calibration", 1], ["reference_inputs", 1], ["reference_outputs", 1], ["window_approval", 2], ["window_gate", 2]]


def test_a_multiprocess_run_succeeds(tmp_path):
    out = dagster(tmp_path, "-f", str(ROOT / "monitoring_pipeline_tests" / "multiprocess_definitions.py"),
                  "-a", "defs", "-j", "monitoring_job_multiprocess", *window("2026-01-08"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Launching subprocess" in out.stderr
    assert counts(tmp_path)["ml_drift_history"] == 64


def tier5_config(tmp_path, name, **overrides):
    config = yaml.safe_load((ROOT / "configs" / "example_tiers_monitoring.yaml").read_text())
    config["ops"]["tier5_report"]["config"].update(overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def failure_line(output: str, start: str) -> str:
    """The one ERROR line of a failed gate that begins with ``start``; it is the last ERROR line
    before the step's failure and its traceback."""
    lines = output.splitlines()
    errors = [i for i, text in enumerate(lines) if " - ERROR - " in text]
    found = [i for i in errors if f" - {start}" in lines[i]]
    assert len(found) == 1, "\n".join(lines[i] for i in errors)
    after = [i for i in errors if i > found[0]]
    assert after and "STEP_FAILURE" in lines[after[0]], lines[after[0]] if after else "no failure after it"
    return start + lines[found[0]].split(f" - {start}", 1)[1]


def test_tier5_gate_exit_status(tmp_path):
    example = str(ROOT / "configs" / "example_tiers_monitoring.yaml")
    good = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "tier5_monitoring_job", "-c", example)
    assert good.returncode == 0, good.stderr[-3000:]
    assert "Model accuracy 0.9" in good.stdout
    better = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "tier5_monitoring_job", "-c",
                     tier5_config(tmp_path, "same", baseline_run_id=1))
    assert better.returncode == 0, better.stderr[-3000:]
    assert "Candidate left accuracy unchanged (+0.0%)" in better.stdout
    weak = tier5_config(tmp_path, "weak", baseline_run_id=1,
                        candidate={"kind": "builtin", "name": "logistic_regression", "train_rows": 40})
    bad = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "tier5_monitoring_job", "-c", weak)
    assert bad.returncode != 0
    assert "Candidate regressed accuracy by" in bad.stdout
    assert "tier5_report_status_is_not_fail" in bad.stderr
    # The CLI output says why in one line, logged at ERROR before Dagster's failure and traceback.
    line = failure_line(bad.stderr, "tier5_report_status_is_not_fail failed for Tier 5 run 3 (digits, candidate ")
    assert "accuracy regressed by -" in line and re.search(r"; report: artifact \d+ in .*w\.duckdb", line)
    wh = Warehouse(tmp_path / "w.duckdb")
    assert wh.read("SELECT run_id FROM runs ORDER BY run_id")["run_id"].tolist() == [1, 2, 3]
    verdicts = wh.read("SELECT run_id, any_value(verdict) AS v FROM model_comparisons GROUP BY 1 ORDER BY 1")
    assert verdicts.values.tolist() == [[2, "unchanged"], [3, "regressed"]]
    assert int(wh.read("SELECT count(*) AS n FROM ml_performance_metrics WHERE run_id = 3")["n"][0]) > 5
    # The failed gate stopped the deployment, not the record: the regression alert and the
    # report with its status and reasons are stored; only the passing runs were cleared.
    alerts = wh.read("SELECT alert_type, severity, message, partition_key FROM ml_monitoring_alerts")
    assert alerts["alert_type"].tolist() == ["PERFORMANCE_DEGRADED"] and alerts["partition_key"][0] == "run:3"
    assert "candidate regressed against the champion: accuracy" in alerts["message"][0]
    report = wh.read("SELECT payload->>'status' AS status, payload->>'reasons' AS reasons FROM artifacts "
                     "WHERE name = 'tier5_report' AND run_id = 3")
    assert report["status"].tolist() == ["fail"] and "accuracy regressed by" in report["reasons"][0]
    cleared = wh.read("SELECT run_id FROM artifacts WHERE name = 'deployment_approval' ORDER BY 1")["run_id"]
    assert cleared.tolist() == [1, 2]


def test_tier5_works_for_text(tmp_path):
    config = tier5_config(tmp_path, "text", task_name="trump_tweets", modality="text")
    out = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "tier5_monitoring_job", "-c", config)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Model accuracy" in out.stdout


def test_tier5_gates_a_trained_checkpoint(tmp_path):
    from monitoring_pipeline_tests.lib.test_tier5_checkpoints import checkpoint, register

    good = checkpoint(tmp_path / "models", "digits", "image_cnn", "v1")
    weak = checkpoint(tmp_path / "models", "digits", "image_cnn", "v2", rows=60, epochs=2)
    for path in (good, weak):  # a checkpoint loads only when the registry records it, with its sha256
        register(Warehouse(tmp_path / "w.duckdb"), path)
    ok = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "tier5_monitoring_job", "-c",
                 tier5_config(tmp_path, "good", candidate={"kind": "checkpoint", "path": good}))
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "Model accuracy 0.9" in ok.stdout
    worse = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "tier5_monitoring_job", "-c",
                    tier5_config(tmp_path, "weak", baseline_run_id=1, candidate={"kind": "checkpoint", "path": weak}))
    assert worse.returncode != 0 and "Candidate regressed accuracy by" in worse.stdout
    (Path(weak) / "model.pt").write_bytes(b"not a checkpoint")
    broken = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "tier5_monitoring_job", "-c",
                     tier5_config(tmp_path, "broken", candidate={"kind": "checkpoint", "path": weak}))
    assert broken.returncode != 0 and "model not loaded" in broken.stderr


def test_alerts_list_shows_open_ones_and_all_shows_the_history_with_status(tmp_path):
    from monitoring_pipeline.core.alert_rules import Alert
    from monitoring_pipeline.storage.results import acknowledge_alert, upsert_alerts

    wh = Warehouse(tmp_path / "w.duckdb")
    a = {name: Alert(f"alert-{name}", "critical", "SLO_BREACH", MODEL, "2026-01-05", f"{name} breach", "look",
                     None, (name,)) for name in ("open", "acked", "gone", "manual")}
    keys = dict(asset_key="monitoring_alerts", partition_key=f"2026-01-05|{MODEL}")
    upsert_alerts(wh, list(a.values()), **keys, run_id=4)
    assert acknowledge_alert(wh, "alert-acked", "ana")
    upsert_alerts(wh, [a["open"], a["acked"], a["manual"]], **keys, run_id=5)  # the rerun no longer raises "gone"
    cli = [str(Path(sys.executable).parent / "monitoring-pipeline"), "alerts"]

    def run(*args):
        return subprocess.run([*cli, *args], env=env_for(tmp_path), capture_output=True, text=True, timeout=120)

    resolved = run("resolve", "alert-manual", "--reason", "false positive: upstream backfill")
    assert resolved.returncode == 0 and "resolved alert-manual: false positive: upstream backfill" in resolved.stdout
    again = run("resolve", "alert-manual", "--reason", "twice")
    assert again.returncode == 1 and "no open or acknowledged alert" in again.stderr
    assert run("resolve", "alert-open").returncode == 2  # --reason is required
    listed = run("list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[:2] for line in listed.stdout.splitlines()] == [["alert-open", "open"]]
    everything = run("list", "--all")
    assert everything.returncode == 0, everything.stderr
    lines = {line.split()[0]: line for line in everything.stdout.splitlines()}
    assert set(lines) == {"alert-open", "alert-acked", "alert-gone", "alert-manual"}
    assert lines["alert-acked"].split()[1] == "acknowledged" and "acknowledged by ana" in lines["alert-acked"]
    assert re.search(r"alert-gone\s+resolved\s.*\[resolved at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: "
                     r"no longer raised by monitoring_alerts \(run 5\)\]", lines["alert-gone"])
    assert re.search(r"alert-manual\s+resolved\s.*\[resolved at [^\]]*: false positive: upstream backfill\]",
                     lines["alert-manual"])
    assert "resolved" not in lines["alert-open"]
    assert run("list", "--all", "--model", "nobody").stdout.strip() == "no alerts"


def test_four_runs_at_once_on_a_fresh_home(tmp_path):
    # A fresh DAGSTER_HOME and a fresh warehouse: the helper initialises the home once,
    # then four runs start together (without that, some fail inside Dagster's SQLite).
    procs = [dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "retention_job", background=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(o[-1500:] for o in outputs)
    import dagster as dg

    runs = dg.DagsterInstance.from_config(str(tmp_path)).get_runs()
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 4
    assert Warehouse(tmp_path / "w.duckdb").read("SELECT max(version) AS v FROM schema_version")["v"][0] == LATEST


CLI = str(Path(sys.executable).parent / "monitoring-pipeline")
HOLDER = ("import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'read'); "
          "print('held', flush=True); sys.stdin.read()")


def cli(warehouse: Path, *args):
    return subprocess.run([CLI, *args], env={**os.environ, "MONITORING_WAREHOUSE": str(warehouse)},
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(out, path: Path, cause: str):
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert str(path.resolve()) in lines[0] and re.search(cause, lines[0], re.IGNORECASE), lines[0]


def warehouse_with_alerts(path: Path, n: int = 1) -> Warehouse:
    from monitoring_pipeline.core.alert_rules import Alert
    from monitoring_pipeline.storage.results import upsert_alerts

    wh = Warehouse(path)
    alerts = [Alert(f"alert-{i}", "critical", "SLO_BREACH", MODEL, "2026-01-05", f"breach {i} " * 20, "look",
                    None, ("x",)) for i in range(n)]
    upsert_alerts(wh, alerts, asset_key="monitoring_alerts", partition_key=f"2026-01-05|{MODEL}", run_id=1)
    return wh


class Holder:
    """Another process holding the warehouse open (for reading or writing) until closed."""

    def __init__(self, path: Path, mode: str):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def test_a_corrupt_warehouse_is_one_line_naming_it(tmp_path):
    path = tmp_path / "w.duckdb"
    path.write_bytes(os.urandom(50_000))
    for args in (["alerts", "list"], ["alerts", "ack", "alert-1", "--by", "ana"], ["migrate"]):
        assert_one_line_error(cli(path, *args), path, "not a valid DuckDB database file")


def test_a_warehouse_truncated_to_half_is_one_line_naming_it(tmp_path):
    path = tmp_path / "w.duckdb"
    warehouse_with_alerts(path, 3000)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    for args in (["alerts", "list"], ["alerts", "list", "--all"]):
        assert_one_line_error(cli(path, *args), path, r"could not read|corrupt")


def test_a_missing_warehouse_is_an_error_and_no_file_is_created(tmp_path):
    path = tmp_path / "typo" / "w.duckdb"
    for args in (["alerts", "list"], ["alerts", "ack", "alert-1", "--by", "ana"],
                 ["alerts", "resolve", "alert-1", "--reason", "r"], ["migrate"]):
        assert_one_line_error(cli(path, *args), path, "no such file")
    assert not path.parent.exists()


def test_listing_opens_the_warehouse_read_only(tmp_path):
    path = tmp_path / "w.duckdb"
    warehouse_with_alerts(path)
    path.chmod(0o444)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    # Another process holds a read-only connection: DuckDB lets a second reader in and
    # keeps every writer out, so `list` passing proves it opened the file read-only
    # (also as root, where the file mode does not stop a write).
    with Holder(path, "read"):
        listed = cli(path, "--wait", "0", "alerts", "list")
        assert listed.returncode == 0, listed.stderr
        assert [line.split()[0] for line in listed.stdout.splitlines()] == ["alert-0"]
        assert_one_line_error(cli(path, "--wait", "0.5", "alerts", "ack", "alert-0", "--by", "ana"), path,
                              "locked by another process")
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a file whatever its mode")
def test_writing_to_a_read_only_file_is_one_line(tmp_path):
    path = tmp_path / "w.duckdb"
    warehouse_with_alerts(path)
    path.chmod(0o444)
    assert_one_line_error(cli(path, "alerts", "ack", "alert-0", "--by", "ana"), path, "permission denied")


def test_a_warehouse_locked_by_a_writer_is_one_line(tmp_path):
    path = tmp_path / "w.duckdb"
    warehouse_with_alerts(path)
    with Holder(path, "write"):
        for args in (["alerts", "list"], ["alerts", "ack", "alert-0", "--by", "ana"]):
            assert_one_line_error(cli(path, "--wait", "0.5", *args), path, "locked by another process")
    assert cli(path, "alerts", "list").returncode == 0  # let go: it works again


def test_an_old_schema_is_named_and_migrate_brings_it_up(tmp_path, monkeypatch):
    import duckdb

    from monitoring_pipeline.storage import schema

    path = tmp_path / "w.duckdb"
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
        patch.setattr(schema, "LATEST", 3)
        conn = duckdb.connect(str(path))
        schema.migrate(conn)
        conn.close()
    assert_one_line_error(cli(path, "alerts", "list"), path, f"schema version 3, this code reads version {LATEST}.*"
                                                             "monitoring-pipeline migrate")
    migrated = cli(path, "migrate")
    assert migrated.returncode == 0 and f"schema version {LATEST}" in migrated.stdout, migrated.stderr
    listed = cli(path, "alerts", "list")
    assert listed.returncode == 0 and listed.stdout.strip() == "no open alerts", listed.stderr


def test_a_drift_gate_failure_is_one_line_in_the_cli_output(tmp_path, monkeypatch):
    from monitoring_pipeline_tests.defs.conftest import DAY, file_monitor, traffic_file, write_monitors

    traffic = traffic_file(tmp_path / "t.csv", shift={"mean radius": 1.4, "mean perimeter": 1.4, "mean area": 1.8})
    monkeypatch.setenv("MONITORING_MONITORS", str(write_monitors(tmp_path / "monitors.yaml", file_monitor(traffic))))
    out = dagster(tmp_path, "-m", "monitoring_pipeline", "-j", "monitoring_job", *window(str(DAY)))
    assert out.returncode != 0
    line = failure_line(out.stderr, f"no_drift_alert failed for {DAY}|{MODEL}: ")
    for feature in ("mean radius", "mean perimeter", "mean area"):
        assert re.search(feature + r" wasserstein \d+(\.\d+)? \(alert\)", line), line
    report = Path(os.environ["MONITORING_REPORTS"]) / MODEL / f"{DAY}_{MODEL}.html"
    assert line.endswith(f"; report: {report}") and report.exists()
