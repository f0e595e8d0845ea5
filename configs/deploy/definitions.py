"""The project's definitions with every job on the executor named by $MONITORING_EXECUTOR.

The package's jobs run in process (one step after the other: the embedded DuckDB warehouse
takes one writer). A deployment that spreads steps over processes, pods or Celery workers
loads this code location instead (``dagster api grpc -f configs/deploy/definitions.py``, or
``python_file: configs/deploy/definitions.py`` in a workspace) and gives the executor its settings in
the run config (``execution: config: ...``, examples beside this file):

- ``in_process``: the package's own jobs, unchanged;
- ``multiprocess`` (the default here): one process per step on this machine (local/run_config.yaml);
- ``k8s``: one Kubernetes Job per step, dagster-k8s' ``k8s_job_executor`` (k8s/run_config.yaml);
- ``celery``: steps as Celery tasks, dagster-celery's ``celery_executor`` (celery/run_config.yaml).

Every executor claims the ``warehouse`` pool's slots before a step that writes the warehouse
starts, so the instance's pool limit holds whichever executor runs the steps.
"""

import os

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster_shared.record import copy

import monitoring_pipeline.definitions as package  # its defs stay out of this module's scope: one Definitions here

EXECUTORS = ("in_process", "multiprocess", "k8s", "celery")


def executor(name: str) -> dg.ExecutorDefinition:
    """The executor called ``name`` (one of EXECUTORS); dagster-k8s and dagster-celery are
    imported only when asked for."""
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if name == "celery":
        from dagster_celery import celery_executor

        return celery_executor
    raise ValueError(f"MONITORING_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {name!r}")


def on_executor(defs: dg.Definitions, executor_def: dg.ExecutorDefinition) -> dg.Definitions:
    """``defs`` with every job (and the UI's ad-hoc materializations) on ``executor_def``; the
    schedules and sensors target the new jobs."""
    def swap(job):
        if isinstance(job, UnresolvedAssetJobDefinition):
            return copy(job, executor_def=executor_def)
        return job.with_executor_def(executor_def)

    jobs = {job.name: swap(job) for job in defs.jobs or []}
    schedules = [s.with_updated_job(jobs[s.job_name]) for s in defs.schedules or []]
    sensors = [s.with_updated_jobs([jobs[t.job_name] for t in s.targets]) if s.targets else s
               for s in defs.sensors or []]
    return dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=list(jobs.values()),
                          schedules=schedules, sensors=sensors, resources=defs.resources, executor=executor_def)


defs = on_executor(package.defs, executor(os.environ.get("MONITORING_EXECUTOR", "multiprocess")))
