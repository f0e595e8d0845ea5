"""The closed loop in Dagster on real data: traffic, drift, the sensor, retraining,
promotion, rollback, and a corrupt checkpoint that must not crash the sensor."""

import json
from pathlib import Path

import dagster as dg
import pytest

from monitoring_pipeline.definitions import build_definitions
from monitoring_pipeline.defs.partitions import register_days, window_key
from monitoring_pipeline.storage import registry

from .conftest import config_of

MODEL = "served_breast_cancer"
DAYS = 8
DRIFT_DAY = 3  # every numeric input shifted by one standard deviation from the fourth day on


@pytest.fixture
def loop_defs(tmp_path, warehouse, monkeypatch):
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    config = config_of({
        "name": MODEL, "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"},
        "traffic": {"source": "warehouse", "rows_per_day": 60},
        "model": {"kind": "random_forest", "params": {"n_estimators": 50}, "recent_days": 14, "holdout_days": 2},
        "thresholds": {"slo": {"accuracy": 0.8, "latency_p95_ms": 10_000, "error_rate": 0.05}},
        "retraining": {"cooldown_hours": 24},
    }, start="2026-03-01")
    return build_definitions(config, warehouse)


def simulate(defs, days=DAYS, first_data_day=0, start="2026-03-01"):
    result = defs.resolve_job_def("simulate_traffic_job").execute_in_process(run_config={"ops": {"simulate_traffic": {
        "config": {"model": MODEL, "days": days, "start_date": start, "first_data_day": first_data_day,
                   "label_delay_hours": 0, "drift": {"kind": "shift", "size": 1.0, "day": DRIFT_DAY}}}}})
    assert result.success
    return result.output_for_node("simulate_traffic")


def monitor_days(defs, days):
    job, instance = defs.resolve_job_def("monitoring_job"), dg.DagsterInstance.ephemeral()
    register_days(instance, days)
    for day in days:
        job.execute_in_process(partition_key=window_key(day, MODEL), instance=instance, raise_on_error=False)


def tick(defs, instance, warehouse):
    sensor = defs.resolve_sensor_def("retrain_on_drift_sensor")
    return sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}))


def test_drift_is_seen_a_retraining_is_launched_once_and_the_challenger_wins(loop_defs, warehouse):
    served = simulate(loop_defs)
    assert [s["version"] for s in served] == ["v1"] * DAYS
    before = [s["accuracy"] for s in served[:DRIFT_DAY]]
    after = [s["accuracy"] for s in served[DRIFT_DAY:]]
    assert min(before) > 0.85 and max(after) < 0.7  # the unit change hurts the champion
    days = [s["day"] for s in served]
    monitor_days(loop_defs, days)

    wh = warehouse.get()
    status = wh.read("""SELECT current_period AS day, bool_or(drift_detected AND severity = 'alert') AS alert
                        FROM ml_drift_history WHERE drift_type = 'data' GROUP BY current_period ORDER BY 1""")
    assert status["alert"].tolist() == [False] * DRIFT_DAY + [True] * (DAYS - DRIFT_DAY)
    # Each drift alert carries its diagnosis: a data issue, its features ranked with numbers.
    details = wh.read("""SELECT details FROM ml_monitoring_alerts WHERE alert_type = 'DRIFT_DETECTED'
                         AND drift_type = 'data' ORDER BY created_at""")["details"]
    assert len(details) == DAYS - DRIFT_DAY
    diagnosis = json.loads(details.iloc[0])["diagnosis"]
    assert diagnosis["category"] == "data" and diagnosis["action"] == "retrain"
    assert diagnosis["evidence"][0].startswith("Feature ") and " mean shifted from " in diagnosis["evidence"][0]

    instance = dg.DagsterInstance.ephemeral()
    first = tick(loop_defs, instance, warehouse)
    assert len(first) == 1 and first[0].run_key == f"retrain|{MODEL}|critical_data_drift|{days[DRIFT_DAY]}"
    assert isinstance(tick(loop_defs, instance, warehouse), dg.SkipReason)  # one run per incident
    decisions = wh.read("SELECT trigger, decision FROM retraining_requests ORDER BY created_at, trigger").values.tolist()
    # The concept drift of the same days is the next trigger; the cooldown holds it back.
    assert decisions == [["critical_data_drift", "launched"], ["critical_model_drift", "skipped"]]

    result = loop_defs.resolve_job_def("retrain_model_job").execute_in_process(run_config=first[0].run_config)
    outcome = result.output_for_node("retrain_model")
    assert outcome["promoted"] and outcome["challenger_accuracy"] >= outcome["champion_accuracy"] + 0.01
    assert registry.champion(wh, MODEL)["model_version"] == "v2"
    compared = wh.read("SELECT baseline_version, candidate_version FROM model_comparisons "
                       "WHERE metric_name = 'accuracy'").values.tolist()
    assert compared == [["v1", "v2"]]

    # The promoted model serves the next (still drifted) days better than v1 did.
    recovered = simulate(loop_defs, days=2, first_data_day=DAYS, start="2026-03-09")
    assert [s["version"] for s in recovered] == ["v2", "v2"]
    assert min(s["accuracy"] for s in recovered) > max(after)

    rollback = loop_defs.resolve_job_def("rollback_model_job").execute_in_process(
        run_config={"ops": {"rollback_model": {"config": {"model": MODEL}}}})
    assert rollback.output_for_node("rollback_model") == {"from": "v2", "to": "v1"}


def test_a_corrupt_checkpoint_gives_an_alert_not_a_crash(loop_defs, warehouse):
    simulate(loop_defs, days=1)
    path = Path(registry.champion(warehouse.get(), MODEL)["path"]) / "model_card.json"
    path.write_text("{ not json")
    outcome = tick(loop_defs, dg.DagsterInstance.ephemeral(), warehouse)
    assert isinstance(outcome, dg.SkipReason) and "model not loaded" in outcome.skip_message
    alerts = warehouse.get().read("SELECT alert_type, severity, message FROM ml_monitoring_alerts")
    assert alerts["alert_type"].tolist() == ["SLO_BREACH"] and "model not loaded" in alerts["message"][0]
    with pytest.raises(Exception, match="model not loaded"):
        simulate(loop_defs, days=1)


def test_retraining_a_model_without_a_served_model_is_refused(tmp_path, warehouse):
    from .conftest import bundled_monitor

    defs = build_definitions(config_of(bundled_monitor()), warehouse)
    result = defs.resolve_job_def("retrain_model_job").execute_in_process(
        run_config={"ops": {"retrain_model": {"config": {"model": "breast_cancer_classifier"}}}},
        raise_on_error=False)
    assert not result.success
    assert "declares no served model" in str(result.all_events)


def failure_alerts(defs, instance, warehouse, result):
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    sensor = defs.resolve_sensor_def("monitoring_run_failure_sensor")
    sensor(dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
                                              dagster_event=failure, resources={"warehouse": warehouse})
           .for_run_failure())
    return warehouse.get().read("SELECT alert_type, message FROM ml_monitoring_alerts "
                                "WHERE details IS NULL OR message LIKE '%run %failed%'")


def test_a_failed_run_becomes_an_alert_but_a_failed_check_is_not_alerted_twice(loop_defs, warehouse):
    instance = dg.DagsterInstance.ephemeral()
    simulate(loop_defs, days=1)
    weights = Path(registry.champion(warehouse.get(), MODEL)["path"]) / "model.pkl"
    weights.write_bytes(b"truncated")  # the served model's weights are broken: the run itself fails
    broken = loop_defs.resolve_job_def("simulate_traffic_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config={"ops": {"simulate_traffic": {"config": {
            "model": MODEL, "days": 1, "start_date": "2026-03-02", "first_data_day": 1}}}})
    assert not broken.success and not broken.get_asset_check_evaluations()
    alerts = failure_alerts(loop_defs, instance, warehouse, broken)
    assert alerts["alert_type"].tolist() == ["SLO_BREACH"]
    assert "simulate_traffic_job run" in alerts["message"][0] and "model not loaded" in alerts["message"][0]
    # No traffic on the day: the blocking quality check fails and stores its own alert.
    register_days(instance, ["2026-03-20"])
    empty = loop_defs.resolve_job_def("monitoring_job").execute_in_process(partition_key=window_key("2026-03-20", MODEL), instance=instance,
                                   raise_on_error=False)
    assert not empty.success and any(not e.passed for e in empty.get_asset_check_evaluations())
    before = warehouse.get().read("SELECT count(*) AS n FROM ml_monitoring_alerts")["n"][0]
    failure_alerts(loop_defs, instance, warehouse, empty)
    assert warehouse.get().read("SELECT count(*) AS n FROM ml_monitoring_alerts")["n"][0] == before


def test_acknowledging_an_alert_through_the_job_and_the_cli(loop_defs, warehouse, tmp_path):
    import os
    import subprocess
    import sys

    simulate(loop_defs, days=1)
    (Path(registry.champion(warehouse.get(), MODEL)["path"]) / "model_card.json").write_text("{ not json")
    tick(loop_defs, dg.DagsterInstance.ephemeral(), warehouse)  # stores a critical "model not loaded" alert
    [alert] = warehouse.get().read("SELECT alert_id FROM ml_monitoring_alerts")["alert_id"].tolist()
    cli = [str(Path(sys.executable).parent / "monitoring-pipeline"), "alerts"]
    env = {**os.environ, "MONITORING_WAREHOUSE": warehouse.path}
    listed = subprocess.run([*cli, "list"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and alert in listed.stdout and "SLO_BREACH" in listed.stdout
    ack = subprocess.run([*cli, "ack", alert, "--by", "ana"], env=env, capture_output=True, text=True)
    assert ack.returncode == 0 and f"acknowledged {alert} (by ana)" in ack.stdout
    assert subprocess.run([*cli, "list"], env=env, capture_output=True, text=True).stdout.strip() == "no open alerts"
    again = subprocess.run([*cli, "ack", alert, "--by", "ana"], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "no open alert" in again.stderr
    row = warehouse.get().read("SELECT acknowledged_by, acknowledged_at FROM ml_monitoring_alerts")
    assert row["acknowledged_by"][0] == "ana" and row["acknowledged_at"].notna().all()
    job = loop_defs.resolve_job_def("acknowledge_alert_job")
    missing = job.execute_in_process(run_config={"ops": {"acknowledge": {"config": {"alert_id": alert, "by": "bo"}}}},
                                     raise_on_error=False)
    assert not missing.success and "no open alert" in str(missing.all_events)  # already acknowledged
    deliveries = warehouse.get().read("SELECT channel, status FROM alert_deliveries").values.tolist()
    assert deliveries == [["log", "delivered"]]  # no channel configured: the log heard it, once
    assert Path(os.environ["MONITORING_METRICS"]).read_text().count("ml_monitoring_open_alerts{") == 3
