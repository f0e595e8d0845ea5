"""The production setup end to end: monitoring_job and closed_loop_job through the real
``dagster job execute`` with the Dagster instance on PostgreSQL (dagster-postgres, a dagster.yaml
derived from configs/deploy/dagster.yaml) AND the warehouse on PostgreSQL give the same results as the
embedded default (SQLite under DAGSTER_HOME, a DuckDB warehouse): the same drift verdicts,
metrics, comparisons, alerts, artifacts, registry stages and retraining decisions.

The instance and the warehouse are two databases of the same throwaway server, as configs/deploy/README.md
advises (Dagster's tables never share the warehouse's database).
"""

import subprocess

import pytest
import yaml

from monitoring_pipeline_tests.cli_runs import DAGSTER, content, instance, instance_yaml, new_home, run, run_env
from monitoring_pipeline_tests.warehouses import needs_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOWS = ["2026-01-05", "2026-01-06"]  # breast_cancer_classifier, bundled traffic
STORY = {"ops": {"run_story": {"config": {"days": 5, "drift_day": 2, "second_drift_kind": None}}}}  # digits


def run_everything(home, warehouse) -> dict:
    """Two windows of monitoring_job, then the short closed-loop story, one after another."""
    for day in WINDOWS:
        code, out = run(home, warehouse, day)
        assert code == 0, out[-3000:]
    (home / "story.yaml").write_text(yaml.safe_dump(STORY))
    out = subprocess.run([DAGSTER, "job", "execute", "-m", "monitoring_pipeline", "-j", "closed_loop_job", "-c",
                          str(home / "story.yaml")], cwd=home, env=run_env(home, warehouse), capture_output=True,
                         text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    with instance(home) as inst:
        runs = {r.dagster_run.job_name: r.dagster_run.status.value for r in inst.get_run_records()}
        storage = type(inst.run_storage).__name__
    # the story's own runs (simulate, monitoring, retrain) are in the instance beside it
    assert runs["closed_loop_job"] == "SUCCESS" and {"simulate_traffic_job", "retrain_model_job"} <= set(runs)
    story = out.stdout[out.stdout.index("The closed loop"):]
    return {"content": content(warehouse), "storage": storage, "story": story}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    home = new_home(tmp_path_factory.mktemp("embedded") / "home")
    return run_everything(home, str(home / "w.duckdb"))


@needs_postgres
def test_instance_and_warehouse_on_postgres_give_the_embedded_defaults_results(tmp_path, postgres_server,
                                                                                postgres_url, embedded):
    instance_db = postgres_server.create_database()
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(instance_db))
    migrated = subprocess.run([DAGSTER, "instance", "migrate"], env=run_env(home, postgres_url), capture_output=True,
                              text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stderr[-3000:]

    on_postgres = run_everything(home, postgres_url)

    assert (on_postgres["storage"], embedded["storage"]) == ("PostgresRunStorage", "SqliteRunStorage")
    assert not (home / "history").exists()  # nothing of the instance went to SQLite under DAGSTER_HOME
    assert on_postgres["story"] == embedded["story"]  # the closed loop's timeline, day by day
    expected, got = embedded["content"], on_postgres["content"]
    assert expected["model_registry"] and expected["ml_drift_history"] and expected["ml_monitoring_alerts"]
    for table in expected:
        assert got[table] == expected[table], f"{table} differs between PostgreSQL and the embedded default"
    postgres_server.drop_database(instance_db.rsplit("/", 1)[1])
