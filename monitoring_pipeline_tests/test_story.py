"""End to end: the README's first command, closed_loop_job, through the real dagster CLI
on a slice of the default story (real digits images, rotated from the fourth day)."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from monitoring_pipeline.storage import Warehouse

DAGSTER = str(Path(sys.executable).parent / "dagster")
MODEL = "digits_classifier"
DAYS, DRIFT_DAY = 6, 3
DAY_KEYS = [f"2026-01-0{i + 1}" for i in range(DAYS)]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_story(tmp_path):
    config = tmp_path / "story.yaml"
    config.write_text(yaml.safe_dump({"ops": {"run_story": {"config": {"days": DAYS, "drift_day": DRIFT_DAY}}}}))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb"),
           "MONITORING_MODELS": str(tmp_path / "models")}
    out = subprocess.run([DAGSTER, "job", "execute", "-m", "monitoring_pipeline", "-j", "closed_loop_job",
                          "-c", str(config)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout[out.stdout.index("The closed loop"):]


def timeline(stdout: str) -> list[list[str]]:
    rows = [line.split("  ") for line in stdout.splitlines()[3:] if line.startswith("2026-")]
    return [[cell.strip() for cell in row if cell.strip()] for row in rows]


def test_the_story_detects_the_drift_retrains_promotes_and_recovers(tmp_path):
    stdout = run_story(tmp_path)
    rows = timeline(stdout)
    assert [r[0] for r in rows] == DAY_KEYS
    wh = Warehouse(tmp_path / "w.duckdb")

    alert = wh.read("""SELECT current_period AS day, bool_or(drift_detected AND severity = 'alert') AS alert
                       FROM ml_drift_history WHERE model_name = ? AND drift_type = 'data' GROUP BY ALL ORDER BY 1""",
                    [MODEL])
    assert alert["day"].tolist() == DAY_KEYS
    assert alert["alert"].tolist() == [False] * DRIFT_DAY + [True] * (DAYS - DRIFT_DAY)  # on the drifted days only

    launched = wh.read("SELECT trigger FROM retraining_requests WHERE model_name = ? AND decision = 'launched' "
                       "ORDER BY created_at", [MODEL])["trigger"].tolist()
    assert launched and launched[0] == "critical_data_drift"
    promoted = wh.read("""SELECT model_version FROM model_registry_events WHERE model_name = ? AND stage = 'champion'
                          ORDER BY changed_at""", [MODEL])["model_version"].tolist()
    assert promoted[0] == "v1" and len(promoted) >= 2  # a challenger became champion
    accuracy = wh.read("""SELECT CAST(window_start AS DATE)::VARCHAR AS day, model_version, metric_value AS acc
                          FROM ml_performance_metrics WHERE model_name = ? AND metric_name = 'accuracy'
                            AND NOT estimated ORDER BY 1""", [MODEL])
    drifted = accuracy[accuracy["day"] >= DAY_KEYS[DRIFT_DAY]]
    old = drifted[drifted["model_version"] == "v1"]["acc"]
    new = drifted[drifted["model_version"] == promoted[-1]]["acc"]
    assert len(old) and len(new) and new.min() >= old.max()  # the promoted model serves the drifted days better
    assert accuracy[accuracy["day"] < DAY_KEYS[DRIFT_DAY]]["acc"].min() > 0.9
    comparison = wh.read("""SELECT baseline_value, candidate_value FROM model_comparisons
                            WHERE model_name = ? AND metric_name = 'accuracy' AND candidate_version = ?""",
                         [MODEL, promoted[-1]])
    assert comparison["candidate_value"][0] > comparison["baseline_value"][0]
    assert [r[1] for r in rows][:DRIFT_DAY + 1] == ["v1"] * (DRIFT_DAY + 1) and rows[-1][1] == promoted[-1]

    # The same history is in the Dagster instance the UI reads.
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    jobs = [r.job_name for r in instance.get_runs()]
    assert jobs.count("simulate_traffic_job") == DAYS and jobs.count("monitoring_job") == DAYS
    assert jobs.count("retrain_model_job") == len(launched) and jobs.count("closed_loop_job") == 1

    # Replaying starts from a clean slate and tells the same story.
    again = run_story(tmp_path)
    assert [r[:3] for r in timeline(again)] == [r[:3] for r in rows]
    assert wh.read("SELECT count(*) AS n FROM inference_log WHERE model_name = ?", [MODEL])["n"][0] == DAYS * 60
