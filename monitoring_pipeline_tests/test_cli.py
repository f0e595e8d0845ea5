"""The README's main command, through the real dagster CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def run(args, tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    return subprocess.run([DAGSTER, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.integration
def test_monitoring_job_runs_from_the_cli(tmp_path):
    out = run(["job", "execute", "-m", "monitoring_pipeline", "-j", "monitoring_job"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RUN_SUCCESS" in out.stderr + out.stdout
    assert "breast_cancer: ok - no drift in 30 features" in out.stderr + out.stdout


@pytest.mark.integration
def test_monitoring_job_takes_a_run_config(tmp_path):
    config = ROOT / "configs" / "bundled_drift.yaml"
    out = run(["job", "execute", "-m", "monitoring_pipeline.definitions", "-j", "monitoring_job",
               "-c", str(config)], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.mark.integration
def test_a_bad_run_config_fails_the_command(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ops:\n  data_drift_report:\n    config:\n      alpha: 'high'\n")
    out = run(["job", "execute", "-m", "monitoring_pipeline", "-j", "monitoring_job", "-c", str(bad)], tmp_path)
    assert out.returncode != 0
