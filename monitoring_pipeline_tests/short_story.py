"""One short closed-loop story through the real ``dagster job execute`` CLI, run once per test
session (``short_story`` in conftest.py) and read by the tests of what the UI shows
(test_run_origins over GraphQL, test_dagster_ui_browser in Chromium). Each of them serves its
own copy of the story's DAGSTER_HOME, so one test's server and daemon never touch the other's."""

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from monitoring_pipeline_tests.dagster_home import init_dagster_home
from monitoring_pipeline_tests.dagster_processes import BIN

MODEL = "digits_classifier"
DAYS, DRIFT_DAY = 5, 2  # drift from the third day: gates fail and the sensor retrains


def story_env(home: Path, warehouse: str | None = None) -> dict:
    """The environment of every process on ``home``: the instance, and the warehouse (``warehouse``, a
    PostgreSQL URL, else a DuckDB file in ``home``), models, reports, Prometheus file and API spool inside it."""
    return {**os.environ, "DAGSTER_HOME": str(home), "MONITORING_WAREHOUSE": warehouse or str(home / "w.duckdb"),
            "MONITORING_MODELS": str(home / "models"), "MONITORING_REPORTS": str(home / "reports"),
            "MONITORING_METRICS": str(home / "monitoring.prom"), "MONITORING_SPOOL": str(home / "spool")}


def run_short_story(home: Path, warehouse: str | None = None) -> subprocess.CompletedProcess:
    """``dagster job execute`` of closed_loop_job for DAYS days on a fresh ``home`` (and ``warehouse``,
    see story_env); it must succeed."""
    init_dagster_home(home)
    config = home / "story.yaml"
    config.write_text(yaml.safe_dump({"ops": {"run_story": {"config": {
        "days": DAYS, "drift_day": DRIFT_DAY, "second_drift_kind": None}}}}))
    out = subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "monitoring_pipeline", "-j",
                          "closed_loop_job", "-c", str(config)], cwd=home, env=story_env(home, warehouse),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def copy_of(story: dict, home: Path) -> Path:
    """A copy of the story's DAGSTER_HOME (instance, warehouse, models, reports) at ``home``."""
    shutil.copytree(story["home"], home)
    return home
