"""The Prometheus textfile: the latest results per model, parsed back with prometheus-client."""

from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring_pipeline.lib.prometheus import write_metrics
from monitoring_pipeline.storage.estimates import record_window_performance
from monitoring_pipeline.lib.settings import metrics_path
from monitoring_pipeline.storage import open_warehouse

NAN = float("nan")
FAMILIES = {"accuracy", "estimated_accuracy", "estimated_accuracy_low", "estimated_accuracy_high",
            "estimate_reliable", "latency_ms", "error_rate", "drift_max", "drift_share", "open_alerts",
            "last_success_timestamp_seconds"}


@pytest.fixture
def wh(tmp_path, warehouse_target):
    return open_warehouse(warehouse_target)


def day(d: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, d, hour)


def insert(wh, table: str, columns: str, rows: list[list]) -> None:
    marks = ", ".join("?" * len(columns.split(",")))
    wh.write(lambda conn: conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows))


def fill(wh) -> None:
    insert(wh, "runs", "run_id, run_name, model_name, started_at", [
        [1, "monitor", "m", day(2, 6)],
        [2, "monitor", "m", day(3, 6)],  # stored nothing: not a success
        [3, "monitor", "n", day(1, 6)]])
    metrics = "model_name, model_version, metric_name, metric_value, data_split, window_start, estimated, " \
              "run_id, measured_at"
    insert(wh, "ml_performance_metrics", metrics, [
        ["m", "v1", "accuracy", 0.80, "production", day(1), False, 1, day(2)],
        ["m", "v2", "accuracy", 0.84, "production", day(2), False, 1, day(3)],
        ["m", "v2", "accuracy", 0.85, "production", day(2), False, 1, day(4)],  # re-measured later
        ["m", "v2", "accuracy", 0.99, "eval", day(5), False, 1, day(5)],
        ["m", "v2", "accuracy", 0.83, "production", day(3), True, 1, day(3)],
        ["m", "v1", "latency_p95_ms", 999.0, "production", day(1), False, 1, day(2)],
        ["m", "v2", "latency_p50_ms", 12.0, "production", day(2), False, 1, day(3)],
        ["m", "v2", "latency_p95_ms", 40.0, "production", day(2), False, 1, day(3)],
        ["m", "v2", "latency_p99_ms", 90.0, "production", day(2), False, 1, day(3)],
        ["m", "v2", "error_rate", 0.02, "production", day(2), False, 1, day(3)],
        ["n", None, "error_rate", NAN, "production", day(1), False, 3, day(1)]])
    drift = "model_name, drift_type, feature_name, effect_size, drift_detected, current_period, run_id"
    insert(wh, "ml_drift_history", drift, [
        ["m", "data", "f1", 0.5, True, "2026-03-01", 1],
        ["m", "data", "f1", 0.3, True, "2026-03-02", 1],
        ["m", "data", "f2", 0.1, False, "2026-03-02", 1],
        ["m", "data", "f3", 0.05, False, "2026-03-02", 1],
        ["m", "data", "f4", None, False, "2026-03-02", 1],
        ["m", "prediction", "prediction", 0.02, False, "2026-03-02", 1]])
    insert(wh, "ml_monitoring_alerts", "alert_id, severity, alert_type, model_name, message, status, "
                                       "acknowledged_at, resolved_at", [
        ["a1", "critical", "DRIFT_DETECTED", "m", "drift", "open", None, None],
        ["a2", "critical", "SLO_BREACH", "m", "errors", "open", None, None],
        ["a3", "warning", "SLO_BREACH", "m", "latency", "acknowledged", day(3), None],  # not open
        ["a4", "info", "DATA_QUALITY_ISSUE", "m", "nulls", "open", None, None],
        ["a5", "critical", "DRIFT_DETECTED", "m", "old drift", "resolved", None, day(4)],  # not open
        ["a6", "info", "SLO_BREACH", "m", "old", "resolved", day(2), day(3)],  # acknowledged, then resolved
        ["a7", "warning", "SLO_BREACH", "n", "gone", "resolved", None, day(3)]])


def samples(path) -> dict:
    families = list(text_string_to_metric_families(path.read_text()))
    assert {f.name for f in families} == {f"ml_monitoring_{n}" for n in FAMILIES}
    assert all(f.type == "gauge" for f in families)
    return {(s.name.removeprefix("ml_monitoring_"), tuple(sorted(s.labels.items()))): s.value
            for f in families for s in f.samples}


def test_the_file_holds_the_latest_values_per_model(wh, tmp_path):
    fill(wh)
    path = write_metrics(wh, tmp_path / "metrics" / "monitoring.prom")
    assert path == tmp_path / "metrics" / "monitoring.prom"
    got = samples(path)
    assert got == pytest.approx({
        ("accuracy", (("model", "m"), ("version", "v2"))): 0.85,
        ("estimated_accuracy", (("model", "m"), ("version", "v2"))): 0.83,
        ("latency_ms", (("model", "m"), ("quantile", "0.5"))): 12.0,
        ("latency_ms", (("model", "m"), ("quantile", "0.95"))): 40.0,
        ("latency_ms", (("model", "m"), ("quantile", "0.99"))): 90.0,
        ("error_rate", (("model", "m"),)): 0.02,  # n's NaN is left out, not written as 0
        ("drift_max", (("drift_type", "data"), ("model", "m"))): 0.3,
        ("drift_share", (("drift_type", "data"), ("model", "m"))): 0.25,
        ("drift_max", (("drift_type", "prediction"), ("model", "m"))): 0.02,
        ("drift_share", (("drift_type", "prediction"), ("model", "m"))): 0.0,
        ("open_alerts", (("model", "m"), ("severity", "critical"))): 2,
        ("open_alerts", (("model", "m"), ("severity", "warning"))): 0,
        ("open_alerts", (("model", "m"), ("severity", "info"))): 1,
        ("open_alerts", (("model", "n"), ("severity", "critical"))): 0,
        ("open_alerts", (("model", "n"), ("severity", "warning"))): 0,
        ("open_alerts", (("model", "n"), ("severity", "info"))): 0,
        ("last_success_timestamp_seconds", (("model", "m"),)): day(2, 6).timestamp(),
        ("last_success_timestamp_seconds", (("model", "n"),)): day(1, 6).timestamp()})


def test_the_estimate_is_shown_until_labels_arrive_for_its_window(wh, tmp_path):
    def window(d: int, realized=None, estimate=None):
        record_window_performance(wh, realized=realized, estimate=estimate, model_name="m", model_version="v2",
                                  window_start=day(d), window_end=day(d + 1), n_rows=300,
                                  n_labeled=0 if realized is None else 250, asset_key="eval_metrics",
                                  partition_key=f"2026-03-{d:02d}|m", run_id=None)

    def accuracy_samples():
        got = samples(write_metrics(wh, tmp_path / "monitoring.prom"))
        return {name: value for (name, labels), value in got.items() if "accuracy" in name or "estimate" in name}

    entry = {"estimate": 0.71, "low": 0.64, "high": 0.78, "method": "pape", "reliable": False,
             "reason": "inputs outside the reference"}
    window(1, realized={"accuracy": 0.93})
    window(2, estimate={"accuracy": entry, "reliable": False, "method": "pape"})
    assert accuracy_samples() == pytest.approx({"accuracy": 0.93, "estimated_accuracy": 0.71,
                                                "estimated_accuracy_low": 0.64, "estimated_accuracy_high": 0.78,
                                                "estimate_reliable": 0.0})
    window(2, realized={"accuracy": 0.52})  # labels arrive for the estimated window
    assert accuracy_samples() == pytest.approx({"accuracy": 0.52})
    window(1, estimate={"accuracy": {**entry, "reliable": True}, "reliable": True, "method": "pape"})
    assert accuracy_samples() == pytest.approx({"accuracy": 0.52})  # an estimate older than the labels: left out


def test_an_empty_warehouse_writes_a_valid_file_without_samples(wh, tmp_path):
    path = write_metrics(wh, tmp_path / "monitoring.prom")
    assert samples(path) == {}
    assert "# TYPE ml_monitoring_accuracy gauge" in path.read_text()


def test_a_second_write_replaces_the_file_and_leaves_no_temporary_file(wh, tmp_path):
    folder = tmp_path / "metrics"
    write_metrics(wh, folder / "monitoring.prom")
    fill(wh)
    path = write_metrics(wh, folder / "monitoring.prom")
    assert [p.name for p in folder.iterdir()] == ["monitoring.prom"]
    assert samples(path)[("error_rate", (("model", "m"),))] == pytest.approx(0.02)


def test_the_default_path_follows_the_environment(wh, tmp_path, monkeypatch):
    monkeypatch.setenv("MONITORING_METRICS", str(tmp_path / "elsewhere.prom"))
    assert metrics_path() == tmp_path / "elsewhere.prom"
    assert write_metrics(wh) == tmp_path / "elsewhere.prom" and (tmp_path / "elsewhere.prom").exists()
    monkeypatch.delenv("MONITORING_METRICS")
    assert metrics_path().parts[-2:] == ("metrics", "monitoring.prom")


def test_the_open_alerts_gauge_follows_the_alert_lifecycle(wh, tmp_path):
    from monitoring_pipeline.core.alert_rules import Alert
    from monitoring_pipeline.storage.results import acknowledge_alert, upsert_alerts

    alerts = [Alert(f"id{i}", "critical", "SLO_BREACH", "m", "2026-03-01", f"breach {i}", "look", None, (f"k{i}",))
              for i in range(3)]
    keys = dict(asset_key="monitoring_alerts", partition_key="2026-03-01|m")
    critical = ("open_alerts", (("model", "m"), ("severity", "critical")))

    def gauge():
        return samples(write_metrics(wh, tmp_path / "monitoring.prom"))[critical]

    upsert_alerts(wh, alerts, **keys, run_id=None)
    assert gauge() == 3
    assert acknowledge_alert(wh, "id0", "ana")
    assert gauge() == 2
    upsert_alerts(wh, alerts[:2], **keys, run_id=None)  # id2 is resolved, id0 stays acknowledged
    assert gauge() == 1
    upsert_alerts(wh, alerts, **keys, run_id=None)  # id2 is raised again: open
    assert gauge() == 2


def test_the_last_success_is_the_same_float_on_either_engine(wh):
    """The run's start as unix seconds, computed in Python from the instant the engine gives back:
    DuckDB's extract(epoch ...) gave 1796077277.7325792 where PostgreSQL's gave 1796077277.732579
    for this instant, and the API's snapshot (DuckDB) and the textfile (the warehouse) disagreed."""
    from monitoring_pipeline.lib.prometheus import last_success

    started = datetime(2026, 11, 30, 22, 21, 17, 732579)  # naive: the engine's session wall time
    insert(wh, "runs", "run_id, run_name, model_name, started_at", [[1, "monitor", "m", started]])
    insert(wh, "ml_drift_history", "model_name, drift_type, feature_name, effect_size, drift_detected, "
                                   "current_period, run_id", [["m", "data", "f1", 0.1, False, "2026-11-30", 1]])
    expected = datetime.fromisoformat(str(wh.read("SELECT CAST(started_at AS TIMESTAMPTZ) AS t FROM runs")["t"][0]))
    assert last_success(wh) == {"m": expected.timestamp()}
    assert repr(last_success(wh)["m"]).endswith(".732579")  # no stray last bit
