"""End to end: the README's first command, closed_loop_job, through the real `dg launch` from
the project's root (its pyproject.toml declares the dg project), on the default story (real
digits images, rotated from the fourth day, noisy from the eighth)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from monitoring_pipeline.storage import Warehouse

DG = str(Path(sys.executable).parent / "dg")
DAGSTER = str(Path(sys.executable).parent / "dagster")  # what our users' CI calls
ROOT = Path(__file__).resolve().parents[1]
MODEL = "digits_classifier"
DAYS, DRIFT_DAY, SECOND_DAY = 9, 3, 7
DAY_KEYS = [f"2026-01-0{i + 1}" for i in range(DAYS)]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def env_of(tmp_path) -> dict:
    return {**os.environ, "DAGSTER_HOME": str(tmp_path), "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb"),
            "MONITORING_MODELS": str(tmp_path / "models"), "MONITORING_REPORTS": str(tmp_path / "reports"),
            "MONITORING_METRICS": str(tmp_path / "metrics.prom")}


def run_story(tmp_path, days=DAYS):
    config = tmp_path / "story.yaml"
    config.write_text(yaml.safe_dump({"ops": {"run_story": {"config": {
        "days": days, "drift_day": DRIFT_DAY, "second_drift_kind": "noise", "second_drift_size": 0.3,
        "second_drift_day": SECOND_DAY}}}}))
    env = env_of(tmp_path)
    out = subprocess.run([DG, "launch", "--job", "closed_loop_job", "-c", str(config)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout[out.stdout.index("The closed loop"):]


def timeline(stdout: str) -> list[list[str]]:
    rows = [line.split("  ") for line in stdout.splitlines()[3:] if line.startswith("2026-")]
    return [[cell.strip() for cell in row if cell.strip()] for row in rows]


def day_record(wh, day: str) -> dict:
    """Everything the warehouse holds for one window, run ids left out."""
    key = [MODEL, f"{day}|{MODEL}"]

    def q(sql):
        frame = wh.read(sql, key).round(9)
        return frame.astype(object).where(frame.notna(), None).to_dict("records")

    return {
        "drift": q("""SELECT drift_type, feature_name, effect_size, p_value, severity, drift_detected, model_version,
                      baseline_period FROM ml_drift_history WHERE model_name = ? AND partition_key = ? ORDER BY ALL"""),
        "metrics": q("""SELECT asset_key, metric_name, metric_value, model_version, estimated FROM ml_performance_metrics
                        WHERE model_name = ? AND partition_key = ? AND metric_name NOT LIKE 'latency%'
                        ORDER BY ALL"""),
        "alerts": q("""SELECT alert_id, alert_type, drift_type, severity, message, status FROM ml_monitoring_alerts
                       WHERE model_name = ? AND partition_key = ? ORDER BY ALL"""),
        "summary": q("""SELECT payload FROM artifacts WHERE model_name = ? AND partition_key = ?
                        AND name = 'monitoring_summary'"""),
    }


def test_the_story_detects_drift_retrains_promotes_calms_and_catches_the_next_shift(tmp_path):
    stdout = run_story(tmp_path)
    rows = timeline(stdout)
    assert [r[0] for r in rows] == DAY_KEYS
    wh = Warehouse(tmp_path / "w.duckdb")

    launched = wh.read("SELECT trigger FROM retraining_requests WHERE model_name = ? AND decision = 'launched' "
                       "ORDER BY created_at", [MODEL])["trigger"].tolist()
    assert launched and launched[0] == "critical_data_drift"
    promoted = wh.read("""SELECT model_version FROM model_registry_events WHERE model_name = ? AND stage = 'champion'
                          ORDER BY changed_at""", [MODEL])["model_version"].tolist()
    assert promoted[0] == "v1" and len(promoted) >= 2  # a challenger became champion
    served_by = dict((r[0], r[1]) for r in rows)
    first_promoted = next(day for day in DAY_KEYS if served_by[day] != "v1")
    assert DAY_KEYS[DRIFT_DAY] < first_promoted <= DAY_KEYS[SECOND_DAY - 1]

    alert = wh.read("""SELECT current_period AS day, bool_or(drift_detected AND severity = 'alert') AS alert
                       FROM ml_drift_history WHERE model_name = ? AND drift_type = 'data' GROUP BY ALL ORDER BY 1""",
                    [MODEL]).set_index("day")["alert"].to_dict()
    assert list(alert) == DAY_KEYS
    # Upright days are quiet; the rotated days v1 served alert; once the promoted champion's
    # reference follows it to the rotated regime drift calms; the second shift alerts again.
    assert [alert[d] for d in DAY_KEYS[:DRIFT_DAY]] == [False] * DRIFT_DAY
    assert all(alert[d] for d in DAY_KEYS[DRIFT_DAY:] if served_by[d] == "v1")
    assert not any(alert[d] for d in DAY_KEYS[:SECOND_DAY] if d >= first_promoted)
    assert alert[DAY_KEYS[SECOND_DAY]]
    baseline = wh.read("""SELECT payload FROM artifacts WHERE model_name = ? AND name = 'reference_baseline'
                          AND model_version = ?""", [MODEL, served_by[first_promoted]])["payload"]
    assert len(baseline) == 1 and '"basis": "validation"' in baseline[0]

    accuracy = wh.read("""SELECT CAST(window_start AS DATE)::VARCHAR AS day, model_version, metric_value AS acc
                          FROM ml_performance_metrics WHERE model_name = ? AND metric_name = 'accuracy'
                            AND NOT estimated ORDER BY 1""", [MODEL]).set_index("day")
    rotated = [d for d in DAY_KEYS[DRIFT_DAY:SECOND_DAY]]
    old = [accuracy["acc"][d] for d in rotated if served_by[d] == "v1"]
    new = [accuracy["acc"][d] for d in rotated if served_by[d] != "v1"]
    assert old and new and min(new) > max(old)  # the promoted model serves the rotated days better
    assert accuracy["acc"][DAY_KEYS[:DRIFT_DAY]].min() > 0.9

    # A drift alert erases nothing: each drifted day holds every finding.
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    summaries = instance.get_materialized_partitions(dg.AssetKey("monitoring_summary"))
    alert_parts = instance.get_materialized_partitions(dg.AssetKey("monitoring_alerts"))
    for day in (d for d in DAY_KEYS if alert[d]):
        record = day_record(wh, day)
        types = {(a["alert_type"], a["drift_type"]) for a in record["alerts"]}
        assert ("DRIFT_DETECTED", "data") in types, day
        assert {r["drift_type"] for r in record["drift"]} == {"data", "prediction", "concept"}, day
        assert {"accuracy", "f1_macro"} <= {m["metric_name"] for m in record["metrics"]}, day
        assert len(record["summary"]) == 1, day
        assert json.loads(record["summary"][0]["payload"])["status"] in ("warn", "fail"), day
        if accuracy["acc"][day] < 0.9:  # under the SLO: the performance alert is kept beside the drift alert
            assert ("PERFORMANCE_DEGRADED", None) in types, day
        assert f"{day}|{MODEL}" in summaries and f"{day}|{MODEL}" in alert_parts, day
    assert "no_drift_alert" in rows[DRIFT_DAY][4]  # the gate failed the run, after the record was stored

    # The same history is in the Dagster instance the UI reads.
    jobs = [r.job_name for r in instance.get_runs()]
    assert jobs.count("simulate_traffic_job") == DAYS and jobs.count("monitoring_job") == DAYS
    assert jobs.count("retrain_model_job") == len(launched) and jobs.count("closed_loop_job") == 1

    # Re-materializing the first drifted day after the promotions gives the same record.
    first_drifted = DAY_KEYS[DRIFT_DAY]
    before = day_record(wh, first_drifted)
    out = subprocess.run([DAGSTER, "job", "execute", "-m", "monitoring_pipeline", "-j", "monitoring_job",
                          "--tags", json.dumps({"dagster/partition": f"{first_drifted}|{MODEL}"})],
                         cwd=tmp_path, env=env_of(tmp_path), capture_output=True, text=True, timeout=600)
    assert out.returncode != 0 and "no_drift_alert" in out.stdout + out.stderr  # its gate still fails, for CI
    assert day_record(wh, first_drifted) == before

    # Replaying starts from a clean slate and tells the same story.
    again = run_story(tmp_path, days=DRIFT_DAY + 3)
    assert [r[:3] for r in timeline(again)] == [r[:3] for r in rows[:DRIFT_DAY + 3]]
    assert wh.read("SELECT count(*) AS n FROM inference_log WHERE model_name = ?", [MODEL])["n"][0] == \
        (DRIFT_DAY + 3) * 60
