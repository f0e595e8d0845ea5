"""configs/deploy/'s example configs, each loaded through Dagster's own config schema, so a typo fails here.

Nothing is started: an instance yaml is checked by Dagster's instance loader (the top level and
its rules, e.g. ``concurrency: runs`` beside a run coordinator's own ``max_concurrent_runs``)
and then each configurable class in it (storage, run coordinator, run launcher) against that
class's ``config_type``, as ``DagsterInstance`` would when it builds them; a run config is
checked against the job of configs/deploy/definitions.py on that executor (``validate_run_config``) and
against the executor's own ``config_schema``. The misspelled-key tests show that each of these
checks rejects a typo.
"""

import importlib
import importlib.util
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "configs" / "deploy"
INSTANCES = [DEPLOY / "dagster.yaml", DEPLOY / "k8s" / "dagster.yaml", ROOT / "data" / "dagster_home" / "dagster.yaml"]
RUN_CONFIGS = {"multiprocess": DEPLOY / "local" / "run_config.yaml", "k8s": DEPLOY / "k8s" / "run_config.yaml",
               "celery": DEPLOY / "celery" / "run_config.yaml"}
ENV = {"DAGSTER_PG_HOST": "db.example", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": "dagster",
       "DAGSTER_PG_USER": "dagster", "DAGSTER_PG_PASSWORD": "secret",
       "DAGSTER_CELERY_BROKER_URL": "redis://redis:6379/0", "DAGSTER_CELERY_BACKEND_URL": "redis://redis:6379/1"}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for key, value in ENV.items():  # the {env: ...} values the configs read
        monkeypatch.setenv(key, value)


def check_instance(text: str, home: Path) -> dict:
    """The instance config ``text`` as Dagster loads it from ``home``/dagster.yaml; every
    configurable class in it processed against its own schema. Raises on any error."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(text)
    config, _ = dagster_instance_config(str(home))
    ref = InstanceRef.from_dir(str(home))
    classes = [ref.storage_data, ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data,
               ref.run_coordinator_data, ref.run_launcher_data, ref.compute_logs_data,
               ref.local_artifact_storage_data, ref.scheduler_data]
    for data in filter(None, classes):
        klass = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(klass.config_type(), yaml.safe_load(data.config_yaml) or {})
        if not result.success:
            raise DagsterInvalidConfigError(f"{data.class_name} config", result.errors, data.config_yaml)
    return config


def deploy_definitions(executor: str, monkeypatch) -> dg.Definitions:
    monkeypatch.setenv("MONITORING_EXECUTOR", executor)
    spec = importlib.util.spec_from_file_location(f"deploy_definitions_{executor}", DEPLOY / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs


def check_run_config(executor: str, text: str, monkeypatch) -> dg.JobDefinition:
    """``text`` validated as the run config of monitoring_job on ``executor`` and, its execution
    block alone, against the executor's config_schema. Raises on any error."""
    job = deploy_definitions(executor, monkeypatch).resolve_job_def("monitoring_job")
    run_config = yaml.safe_load(text)
    dg.validate_run_config(job, run_config)
    result = process_config(job.executor_def.config_schema.config_type, run_config["execution"]["config"])
    if not result.success:
        raise DagsterInvalidConfigError(f"{executor} executor config", result.errors, run_config)
    return job


@pytest.mark.parametrize("path", INSTANCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_instance_config_loads_through_dagsters_schema(path, tmp_path):
    config = check_instance(path.read_text(), tmp_path / "home")
    pools = config["concurrency"]["pools"]
    assert pools["granularity"] == "op"  # steps wait for the warehouse slot, whichever executor runs them
    if path.parent.name == "dagster_home":  # the embedded default: DuckDB takes one writer
        assert pools["default_limit"] == 1 and set(config) == {"concurrency"}
        return
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # dagster-postgres' own driver: SQLAlchemy 2.1 would pick psycopg 3, on which its NOTIFY fails
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["concurrency"]["runs"]["max_concurrent_runs"] > 1 and pools["default_limit"] > 1
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_the_k8s_instance_launches_runs_with_k8s_run_launcher(tmp_path):
    config = check_instance((DEPLOY / "k8s" / "dagster.yaml").read_text(), tmp_path / "home")
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert launcher["config"]["instance_config_map"] and launcher["config"]["job_image"]


@pytest.mark.parametrize("executor", sorted(RUN_CONFIGS))
def test_each_run_config_fits_its_executor(executor, monkeypatch):
    job = check_run_config(executor, RUN_CONFIGS[executor].read_text(), monkeypatch)
    assert job.executor_def.name == executor


def test_the_package_jobs_stay_in_process_and_every_deploy_job_moves(monkeypatch):
    defs = deploy_definitions("k8s", monkeypatch)
    jobs = [j for j in defs.get_repository_def().get_all_jobs() if not j.name.startswith("__")]
    assert len(jobs) >= 10 and {j.executor_def.name for j in jobs} == {"k8s"}
    names = {j.name for j in jobs}
    assert {s.job_name for s in defs.schedules} <= names
    assert deploy_definitions("in_process", monkeypatch).resolve_job_def("monitoring_job").executor_def.name == \
        "in_process"
    with pytest.raises(ValueError, match="MONITORING_EXECUTOR must be one of in_process, multiprocess, k8s, celery"):
        deploy_definitions("kubernetes", monkeypatch)


# A misspelled key in each file, at each level the checks above read: the instance's top level,
# the run coordinator's and the run launcher's own config, the storage, the concurrency rules,
# the executors' config.
INSTANCE_TYPOS = [
    (DEPLOY / "dagster.yaml", "run_retries:", "run_retry:"),
    (DEPLOY / "dagster.yaml", "max_concurrent_runs: 16", "max_concurent_runs: 16"),
    (DEPLOY / "dagster.yaml", "dequeue_num_workers: 4", "dequeue_workers: 4"),
    (DEPLOY / "dagster.yaml", "db_name: {env: DAGSTER_PG_DB}", "database: {env: DAGSTER_PG_DB}"),
    (DEPLOY / "dagster.yaml", "granularity: op", "granularity: step"),
    (DEPLOY / "k8s" / "dagster.yaml", "instance_config_map: dagster-instance", "instance_configmap: dagster-instance"),
    (DEPLOY / "k8s" / "dagster.yaml", "job_namespace: monitoring", "namespace: monitoring"),
    (ROOT / "data" / "dagster_home" / "dagster.yaml", "default_limit: 1", "default_limits: 1"),
]


@pytest.mark.parametrize("path, right, wrong", INSTANCE_TYPOS, ids=lambda v: v.split(":")[0] if isinstance(v, str)
                         else str(v.relative_to(ROOT)))
def test_a_misspelled_key_in_an_instance_config_is_rejected(path, right, wrong, tmp_path):
    text = path.read_text()
    assert text.count(right) == 1, f"{right!r} is not in {path} once: the typo would test nothing"
    with pytest.raises((DagsterInvalidConfigError, dg.DagsterInvalidConfigError)):
        check_instance(text.replace(right, wrong), tmp_path / "home")


RUN_CONFIG_TYPOS = [
    ("multiprocess", "max_concurrent: 2", "max_concurency: 2"),
    ("multiprocess", "preload_modules:", "preload:"),
    ("k8s", "job_namespace: monitoring", "job_namspace: monitoring"),
    ("k8s", "    step_k8s_config:", "    step_config:"),
    ("celery", "config_source:", "config:"),
    ("celery", "broker: {env: DAGSTER_CELERY_BROKER_URL}", "brokers: {env: DAGSTER_CELERY_BROKER_URL}"),
]


@pytest.mark.parametrize("executor, right, wrong", RUN_CONFIG_TYPOS, ids=lambda v: v.split(":")[0].strip())
def test_a_misspelled_key_in_a_run_config_is_rejected(executor, right, wrong, monkeypatch):
    text = RUN_CONFIGS[executor].read_text()
    assert text.count(right) == 1, f"{right!r} is not in {RUN_CONFIGS[executor]} once"
    with pytest.raises(dg.DagsterInvalidConfigError):
        check_run_config(executor, text.replace(right, wrong), monkeypatch)


def test_the_executor_schema_alone_rejects_a_typo():
    """The executors' own config_schema, without a job around it (what the Celery worker's
    ``-y`` file and the k8s step handler read)."""
    from dagster_celery.executor import celery_executor
    from dagster_k8s import k8s_job_executor

    for executor_def, good, typo in [(k8s_job_executor, {"job_namespace": "m"}, {"job_namspace": "m"}),
                                     (celery_executor, {"broker": "redis://r"}, {"brokr": "redis://r"}),
                                     (dg.multiprocess_executor, {"max_concurrent": 2}, {"max_concurent": 2})]:
        assert process_config(executor_def.config_schema.config_type, good).success
        result = process_config(executor_def.config_schema.config_type, typo)
        assert not result.success and "Received unexpected config entry" in result.errors[0].message


def test_the_celery_worker_reads_the_same_file():
    from dagster_celery.cli import get_validated_config

    config = get_validated_config(str(RUN_CONFIGS["celery"]))
    assert config["broker"] == ENV["DAGSTER_CELERY_BROKER_URL"]
    assert config["include"] == ["monitoring_pipeline.definitions"]


def test_the_production_instance_derives_a_test_instance(tmp_path):
    """The dagster.yaml the PostgreSQL instance test runs on is configs/deploy/dagster.yaml with only the
    server changed (cli_runs.instance_yaml)."""
    from monitoring_pipeline_tests.cli_runs import instance_yaml

    text = instance_yaml("postgresql://monitoring@127.0.0.1:5499/dagster_instance")
    config = check_instance(text, tmp_path / "home")
    assert config["storage"]["postgres"]["postgres_url"] == "postgresql+psycopg2://monitoring@127.0.0.1:5499/dagster_instance"
    assert config["concurrency"] == yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["concurrency"]
