"""``POST /monitoring/drift/check``: launch ``monitoring_job`` for one model's window on the Dagster
instance, through Dagster's own GraphQL client against the running webserver
($MONITORING_DAGSTER_URL, e.g. ``dagster dev``), and answer with the run id.

The window's day is registered in the ``monitoring_days`` dynamic partitions first (the
webserver checks a run's partition before it launches it); the run carries the tags the job's
runs get everywhere (the repository label, the monitor's owners and tags, ``dagster/partition``),
so it shows under monitoring_job in the UI. While a run of the same partition is queued,
starting or started, the answer is 409 naming it. The check and the launch hold one lock, so
two requests to this server cannot both launch; two API processes could (the window's steps are
idempotent per partition, so the second run rewrites the same rows).
"""

from __future__ import annotations

import threading
from datetime import date
from urllib.parse import urlsplit

import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from fastapi import APIRouter, Depends, HTTPException, Request
from gql.transport.exceptions import TransportConnectionFailed
from pydantic import BaseModel, Field, field_validator

from monitoring_pipeline.lib.dagster_names import (DAYS_PARTITIONS, LOCATION, MONITORING_JOB, PARTITION_NAME_TAG,
                                                   REPOSITORY_NAME, RUN_TAGS, window_partition)
from monitoring_pipeline.lib.monitors import MonitorConfigError, load_monitors, monitor_run_tags

from .auth import require_write
from .errors import Unavailable, responses

router = APIRouter(tags=["checks"])

ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")  # a run of the partition is still to come or going
_launching = threading.Lock()

_ACTIVE_RUNS = """query($filter: RunsFilter!) { runsOrError(filter: $filter) {
    __typename ... on Runs { results { runId status } } ... on PythonError { message } } }"""

_ADD_DAY = """mutation($repo: RepositorySelector!, $name: String!, $key: String!) {
    addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
        __typename ... on UnauthorizedError { message } ... on PythonError { message } } }"""


class CheckRequest(BaseModel):
    model: str = Field(min_length=1, description="A monitored model (a name in the monitors file).")
    window: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="The window's day, YYYY-MM-DD.",
                        examples=["2026-01-03"])

    @field_validator("window")
    @classmethod
    def _a_day(cls, value: str) -> str:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"window {value!r} is not a calendar day") from None
        return value


class CheckLaunched(BaseModel):
    run_id: str
    job: str
    partition: str = Field(description="The run's partition key, '<day>|<model>'.")
    run_url: str = Field(description="The run's page in the Dagster UI.")


class _Unreachable(Exception):
    pass


def client_for(url: str, timeout: int = 30) -> DagsterGraphQLClient:
    """Dagster's GraphQL client for a webserver URL (scheme, host, port and a path prefix)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"MONITORING_DAGSTER_URL must be an http(s) URL, got {url!r}")
    return DagsterGraphQLClient(parts.hostname, port_number=parts.port, use_https=parts.scheme == "https",
                                timeout=timeout, path_prefix=parts.path.rstrip("/"))


_NO_ANSWER = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, TransportConnectionFailed,
              ConnectionError, TimeoutError)


def _call(what, *args, **kwargs):
    """Run one client call; a webserver that does not answer becomes ``_Unreachable`` (gql wraps
    the connection's error: the cause chain is searched)."""
    try:
        return what(*args, **kwargs)
    except DagsterGraphQLClientError as error:
        causes, cause = [], error.__cause__
        while cause is not None and len(causes) < 20:
            causes.append(cause)
            cause = cause.__cause__ or cause.__context__
        if any(isinstance(c, _NO_ANSWER) for c in causes):
            last = causes[-1]
            raise _Unreachable(getattr(last, "strerror", None) or type(last).__name__) from error
        raise


def _graphql_error(error: DagsterGraphQLClientError) -> str:
    kind = str(error.args[0]) if error.args else type(error).__name__
    body = error.body if isinstance(error.body, str) else ""
    return f"{kind.splitlines()[0][:200]}{': ' + body[:400] if body else ''}"


def launch_check(url: str, job: str, day: str, model: str, tags: dict[str, str]) -> str:
    """The run id of ``job`` launched for the window; HTTPException 409 while one of its partition is active."""
    client = client_for(url)
    partition = window_partition(day, model)
    with _launching:
        found = _call(client._execute, _ACTIVE_RUNS, {"filter": {
            "pipelineName": job, "statuses": list(ACTIVE), "tags": [{"key": PARTITION_NAME_TAG, "value": partition}]}})
        runs = found["runsOrError"]
        if runs["__typename"] != "Runs":
            raise HTTPException(502, f"the Dagster webserver could not list runs: {runs.get('message', '')[:400]}")
        if runs["results"]:
            active = runs["results"][0]
            raise HTTPException(409, f"run {active['runId']} of {job} for partition {partition} is "
                                     f"{active['status']}; launch again when it has finished")
        added = _call(client._execute, _ADD_DAY, {"repo": {"repositoryName": REPOSITORY_NAME,
                                                            "repositoryLocationName": LOCATION},
                                                   "name": DAYS_PARTITIONS, "key": day})["addDynamicPartition"]
        if added["__typename"] not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
            raise HTTPException(502, f"the Dagster webserver did not register day {day} in {DAYS_PARTITIONS}: "
                                     f"{added['__typename']}: {added.get('message', '')[:400]}")
        return _call(client.submit_job_execution, job, repository_location_name=LOCATION,
                     repository_name=REPOSITORY_NAME, run_config={},
                     tags={**RUN_TAGS, **tags, PARTITION_NAME_TAG: partition})


@router.post("/monitoring/drift/check", status_code=202, response_model=CheckLaunched,
             dependencies=[Depends(require_write)], responses=responses(401, 404, 409, 502, 503))
def drift_check(body: CheckRequest, request: Request) -> CheckLaunched:
    """Launch monitoring_job for `model`'s window `window` on the Dagster instance (a running webserver at
    $MONITORING_DAGSTER_URL); 202 with the run id. 409 while a run of that partition is queued or running."""
    settings = request.app.state.settings
    try:
        monitors = load_monitors(settings.monitors)
    except MonitorConfigError as error:
        raise Unavailable(f"the monitors file cannot be read: {error}", retry_after=30) from error
    if body.model not in monitors.names:
        raise HTTPException(404, f"no monitored model named {body.model!r}; known: {', '.join(monitors.names)}")
    tags = monitor_run_tags(monitors.monitor(body.model))
    try:
        run_id = launch_check(settings.dagster_url, MONITORING_JOB, body.window, body.model, tags)
    except _Unreachable as error:
        raise Unavailable(f"the Dagster webserver at {settings.dagster_url} does not answer ({error}): start "
                          "`dagster dev` (or dagster-webserver) on this instance, or set MONITORING_DAGSTER_URL",
                          retry_after=10) from error
    except DagsterGraphQLClientError as error:
        raise HTTPException(502, f"the Dagster webserver refused the launch: {_graphql_error(error)}") from error
    except ValueError as error:  # a malformed MONITORING_DAGSTER_URL: the server's configuration
        raise Unavailable(str(error), retry_after=60) from error
    return CheckLaunched(run_id=run_id, job=MONITORING_JOB, partition=window_partition(body.window, body.model),
                         run_url=f"{settings.dagster_url}/runs/{run_id}")
