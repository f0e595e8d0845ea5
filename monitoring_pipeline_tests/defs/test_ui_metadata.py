"""What the Dagster UI shows a person: descriptions, kinds, owners and tags, config fields that
explain themselves, and a Tier 5 Launchpad whose default config launches."""

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from monitoring_pipeline.definitions import build_definitions, defs
from monitoring_pipeline.defs.partitions import window_key
from monitoring_pipeline.defs.resources import WarehouseResource
from monitoring_pipeline.defs.tier5 import Tier5Config
from monitoring_pipeline.lib.monitors import load_monitors
from monitoring_pipeline.lib.ownership import OWNERS_TAG
from monitoring_pipeline.lib.settings import monitors_path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "example_tiers_monitoring.yaml"
KNOWN_KINDS = {"duckdb", "pandas", "torch", "sklearn", "matplotlib"}  # matplotlib: the closed loop's timeline plot
REPO = defs.get_repository_def()
JOBS = [job for job in REPO.get_all_jobs() if not job.name.startswith("__")]  # __ASSET_JOB is Dagster's own


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_every_job_has_a_description(job):
    assert job.description and job.description.strip()


@pytest.mark.parametrize("schedule", REPO.schedule_defs, ids=lambda s: s.name)
def test_every_schedule_has_a_description(schedule):
    assert schedule.description and schedule.description.strip()


@pytest.mark.parametrize("sensor", REPO.sensor_defs, ids=lambda s: s.name)
def test_every_sensor_has_a_description(sensor):
    assert sensor.description and sensor.description.strip()


@pytest.mark.parametrize("spec", list(defs.resolve_all_asset_specs()), ids=lambda s: s.key.to_user_string())
def test_every_asset_has_a_description_kinds_owners_and_the_project_tags(spec):
    project = load_monitors(monitors_path())
    assert spec.description and spec.description.strip()
    assert spec.kinds and spec.kinds <= KNOWN_KINDS and "duckdb" in spec.kinds  # every asset writes the warehouse
    assert project.owners and set(project.owners) <= set(spec.owners)
    assert project.tags.items() <= spec.tags.items()


def test_kinds_name_what_each_asset_uses():
    kinds = {spec.key.to_user_string(): spec.kinds for spec in defs.resolve_all_asset_specs()}
    assert "torch" in kinds["current_profile"] and "torch" in kinds["eval_metrics"]  # the CNN's embeddings
    assert "sklearn" in kinds["concept_drift_report"]  # a random forest per window
    assert "torch" in kinds["tier5_report"] and "sklearn" in kinds["tier5_report"]  # checkpoints or bundled models
    assert kinds["window_gate"] == {"duckdb"}


def _undescribed(field: dg.Field | None, path: str) -> list[str]:
    """Dotted paths of the config fields under ``field`` without a description."""
    if field is None:
        return []
    missing, stack = [], [(field.config_type, path)]
    while stack:
        config_type, where = stack.pop()
        inner = getattr(config_type, "inner_type", None)  # Noneable, Array
        if inner is not None:
            stack.append((inner, where))
        for name, sub in (getattr(config_type, "fields", None) or {}).items():
            if not (sub.description or "").strip():
                missing.append(f"{where}.{name}")
            stack.append((sub.config_type, f"{where}.{name}"))
    return missing


def test_every_config_field_of_every_op_and_asset_has_a_description():
    ops = {op.name: op for job in REPO.get_all_jobs() for op in job.all_node_defs if isinstance(op, dg.OpDefinition)}
    with_config = [name for name, op in ops.items() if op.config_field is not None]
    assert {"tier5_report", "run_story", "simulate_traffic", "retrain_model", "delete_old_raw_logs"} <= set(with_config)
    missing = [path for name, op in ops.items() for path in _undescribed(op.config_field, name)]
    assert not missing, f"config fields without a description: {missing}"


def test_tier5_defaults_are_the_example_config():
    example = yaml.safe_load(EXAMPLE.read_text())["ops"]["tier5_report"]["config"]
    defaults = Tier5Config().model_dump()
    for key, value in example.items():
        if isinstance(value, dict):
            assert {k: defaults[key][k] for k in value} == value, key
        else:
            assert defaults[key] == value, key


def test_tier5_launchpad_default_config_is_valid():
    job = defs.resolve_job_def("tier5_monitoring_job")
    assert dg.validate_run_config(job, {})["ops"]["tier5_report"]["config"]["task_name"] == "digits"
    with pytest.raises(dg.DagsterInvalidConfigError, match="task_name"):
        dg.validate_run_config(job, {"ops": {"tier5_report": {"config": {"task_name": 3}}}})


def test_tier5_runs_without_run_config_as_with_the_example(tmp_path, more_targets):
    example = yaml.safe_load(EXAMPLE.read_text())
    outputs = []
    for name, run_config in (("default", None), ("example", example)):
        warehouse = WarehouseResource(path=more_targets(name))
        job = build_definitions(load_monitors(monitors_path()), warehouse).resolve_job_def("tier5_monitoring_job")
        result = job.execute_in_process(run_config=run_config, instance=dg.DagsterInstance.ephemeral())
        assert result.success
        outputs.append(result.output_for_node("tier5_report"))
    default, from_example = outputs
    assert default["status"] == from_example["status"] and default["summary"] == from_example["summary"]
    assert default["eval_metrics"]["accuracy"] == pytest.approx(from_example["eval_metrics"]["accuracy"])


@pytest.mark.integration
def test_dagster_job_execute_tier5_without_a_config_file(tmp_path, warehouse_target):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MONITORING_WAREHOUSE": warehouse_target,
           "MONITORING_MODELS": str(tmp_path / "models")}
    out = subprocess.run([str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "monitoring_pipeline",
                          "-j", "tier5_monitoring_job"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    assert "Missing required config" not in out.stderr
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Model accuracy" in out.stdout


def test_schedules_request_one_run_per_scheduled_model_with_its_run_tags():
    monitors = load_monitors(monitors_path())
    scheduled = [m for m in monitors.monitors if m.scheduled]
    daily = REPO.get_schedule_def("daily_monitoring")
    at = datetime(2026, 1, 6, 0, 30)
    with dg.instance_for_test() as instance, dg.build_schedule_context(
            instance=instance, repository_def=REPO, scheduled_execution_time=at) as context:
        requests = daily.evaluate_tick(context).run_requests
        assert instance.get_dynamic_partitions("monitoring_days") == ["2026-01-05"]  # the tick registers its day
    assert [r.partition_key for r in requests] == [window_key("2026-01-05", m.name) for m in scheduled]
    for request, monitor in zip(requests, scheduled):
        assert request.tags[OWNERS_TAG] == ",".join(monitor.owners)
        assert monitor.tags.items() <= request.tags.items()
    at = datetime(2026, 1, 1, 0, 30)
    with dg.build_schedule_context(repository_def=REPO, scheduled_execution_time=at) as context:
        before = daily.evaluate_tick(context)
    assert not before.run_requests and "before the monitors' start_date" in before.skip_message
