"""The service's own state: ``/api/ml/health`` (is every monitored model watched?),
``/api/ml/metrics`` (the seed's Phase 5 latency and error JSON) and ``/metrics`` (Prometheus).

Health is healthy when, for every model of the monitors file, its champion checkpoint opens and
matches the model registry's sha256 (a monitor without ``model:`` has no checkpoint here), its
latest successful monitoring run is younger than ``max_age_hours``, the warehouse answers at this
code's schema, and no alert channel is misconfigured. The answer has the same shape with 200 and
503; a 503 lists each reason as a sentence. Opening a checkpoint is remembered per directory
state (each file's name, mtime and size) and recorded hash, so a health probe costs one directory
listing per champion until a file changes.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from pydantic import BaseModel, Field

from monitoring_pipeline.alerts.channels import UnusableChannel, channels_from_env
from monitoring_pipeline.lib.monitors import Monitor, MonitorConfigError, alert_policy, load_monitors
from monitoring_pipeline.lib.prometheus import last_success, registry
from monitoring_pipeline.lib.settings import models_dir
from monitoring_pipeline.storage import Warehouse, WarehouseError
from monitoring_pipeline.storage import registry as model_registry
from monitoring_pipeline.storage.schema import LATEST

from .auth import require_read
from .errors import Unavailable, responses

router = APIRouter(tags=["service"])


SERVICE_METRICS = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate")


class WarehouseHealth(BaseModel):
    reachable: bool
    schema_version: int | None = Field(description="The warehouse's schema version (null when it cannot answer).")
    expected_schema_version: int = Field(description="The schema version this code reads.")
    detail: str | None = None


class ChampionHealth(BaseModel):
    source: Literal["registry", "none"] = Field(
        description="registry: the monitor's `model:` is served from a registered checkpoint; none: the monitor "
                    "declares no `model:`, so no checkpoint is loaded here (its traffic carries its predictions).")
    version: str | None
    loaded: bool | None = Field(description="The checkpoint opened and its weights match the registry's sha256; "
                                            "null when there is no checkpoint to open.")
    path: str | None = None
    detail: str


class RunHealth(BaseModel):
    last_success: datetime | None = Field(description="Start of the latest monitoring run that stored results "
                                                      "(ml_monitoring_last_success_timestamp_seconds).")
    age_hours: float | None
    max_age_hours: float
    fresh: bool


class ChannelRoutes(BaseModel):
    routes: list[str] = Field(description="The channels the monitor's alerts may use (monitors.yaml `alerts`).")
    configured: list[str] = Field(description="Routes whose environment variables are set.")
    not_configured: list[str] = Field(description="Routes left silent: their environment variables are unset.")


class ModelHealth(BaseModel):
    model: str
    healthy: bool
    champion: ChampionHealth | None
    last_run: RunHealth | None
    alert_channels: ChannelRoutes
    reasons: list[str]


class ChannelsHealth(BaseModel):
    configured: list[str] = Field(description="Channel names whose environment variables are set (never values).")
    misconfigured: list[str]


class HealthResponse(BaseModel):
    healthy: bool
    checked_at: datetime
    warehouse: WarehouseHealth
    alert_channels: ChannelsHealth
    models: list[ModelHealth]
    reasons: list[str] = Field(description="Why the service is unhealthy, one sentence each (empty when healthy).")


# --- the champion's checkpoint, checked once per state of its files --------------------------------------------

_opened: dict[tuple, str | None] = {}  # (directory, recorded sha256, models folder, files) -> None or the reason
_opened_lock = threading.Lock()
_OPENED_MAX = 256


def _files(directory: Path) -> tuple:
    return tuple(sorted((f.name, s.st_mtime_ns, s.st_size) for f in directory.iterdir() if f.is_file()
                        for s in (f.stat(),)))


def checkpoint_problem(wh: Warehouse, directory: Path, recorded_sha256: str | None) -> str | None:
    """None when the checkpoint opens (``models.checkpoints.load_checkpoint``: the registry's
    sha256, the card's, the weights deserialize), else why not. Remembered per state of the
    directory's files, so an unchanged checkpoint is read once."""
    try:
        files = _files(directory)
    except OSError as error:
        return f"{directory}: {error.strerror or error}"
    key = (str(directory.resolve()), recorded_sha256, str(models_dir().resolve()), files)
    with _opened_lock:
        if key in _opened:
            return _opened[key]
    from monitoring_pipeline.models.checkpoints import CheckpointError, load_checkpoint  # torch: on first use

    try:
        load_checkpoint(directory, registered=model_registry.recorded_checkpoints(wh), models_root=models_dir())
        problem = None
    except CheckpointError as error:
        problem = str(error)
    with _opened_lock:
        if len(_opened) >= _OPENED_MAX:
            _opened.clear()
        _opened[key] = problem
    return problem


def _champion(wh: Warehouse, monitor: Monitor) -> ChampionHealth:
    if monitor.model is None:
        return ChampionHealth(source="none", version=monitor.champion, loaded=None,
                              detail="the monitor declares no `model:`: the pipeline loads no checkpoint of it "
                                     "(its predictions come with its traffic), so there is no file to verify")
    row = model_registry.champion(wh, monitor.name)
    if row is None:
        return ChampionHealth(source="registry", version=None, loaded=False,
                              detail=f"model {monitor.name!r} has no champion in the model registry")
    version = str(row["model_version"])
    path = row["path"] if isinstance(row["path"], str) else None
    if path is None:
        return ChampionHealth(source="registry", version=version, loaded=False,
                              detail=f"champion {version} of {monitor.name!r} has no checkpoint directory")
    recorded = row["weights_sha256"] if isinstance(row["weights_sha256"], str) else None
    problem = checkpoint_problem(wh, Path(path), recorded)
    return ChampionHealth(source="registry", version=version, loaded=problem is None, path=path,
                          detail=problem or "the checkpoint opens and its weights match the registry's sha256")


def _last_run(at: float | None, now: float, max_age_hours: float) -> RunHealth:
    if at is None:
        return RunHealth(last_success=None, age_hours=None, max_age_hours=max_age_hours, fresh=False)
    age = (now - at) / 3600
    return RunHealth(last_success=datetime.fromtimestamp(at, timezone.utc), age_hours=round(age, 4),
                     max_age_hours=max_age_hours, fresh=age <= max_age_hours)


def _routes(monitor: Monitor, configured: set[str]) -> ChannelRoutes:
    routes = list(alert_policy(monitor).routes)
    return ChannelRoutes(routes=routes, configured=[r for r in routes if r in configured],
                         not_configured=[r for r in routes if r not in configured])


_NO_ANSWER = (WarehouseError, Unavailable)  # the warehouse (or the API's snapshot of it) cannot answer now


def _why(error: Exception) -> str:
    return getattr(error, "cause", None) or getattr(error, "detail", None) or str(error)


def _warehouse(wh: Warehouse) -> WarehouseHealth:
    try:
        version = wh.read("SELECT max(version) AS v FROM schema_version")["v"].iloc[0]
    except _NO_ANSWER as error:
        return WarehouseHealth(reachable=False, schema_version=None, expected_schema_version=LATEST,
                               detail=_why(error))
    version = int(version)
    detail = None if version == LATEST else f"the warehouse is at schema version {version}, this code reads {LATEST}"
    return WarehouseHealth(reachable=version == LATEST, schema_version=version, expected_schema_version=LATEST,
                           detail=detail)


def health_of(wh: Warehouse, monitors_file: Path, max_age_hours: float, now: float | None = None) -> HealthResponse:
    """The health answer (see the module's docstring); ``now`` is a unix time (default: now)."""
    now = time.time() if now is None else now
    reasons: list[str] = []
    warehouse = _warehouse(wh)
    if not warehouse.reachable:
        reasons.append(f"the warehouse cannot answer: {warehouse.detail}" if warehouse.schema_version is None
                       else f"the warehouse is not usable: {warehouse.detail}")
    channels = channels_from_env()
    misconfigured = sorted(n for n, c in channels.items() if isinstance(c, UnusableChannel))
    reasons += [f"alert channel {n!r} is misconfigured: {channels[n].reason}" for n in misconfigured]
    configured = {n for n in channels if n not in misconfigured}
    try:
        monitors = load_monitors(monitors_file).monitors
    except MonitorConfigError as error:
        monitors = ()
        reasons.append(f"the monitors file cannot be read: {error}")
    try:
        successes = last_success(wh) if warehouse.reachable else {}
    except _NO_ANSWER as error:  # it answered a moment ago: a run holds it past the deadline now
        warehouse = WarehouseHealth(reachable=False, schema_version=warehouse.schema_version,
                                    expected_schema_version=LATEST, detail=_why(error))
        reasons.append(f"the warehouse cannot answer: {warehouse.detail}")
    models = []
    for monitor in monitors:
        own: list[str] = []
        champion = run = None
        if warehouse.reachable:
            try:
                champion = _champion(wh, monitor)
            except _NO_ANSWER as error:
                champion = ChampionHealth(source="registry", version=None, loaded=False,
                                          detail=f"the model registry cannot answer: {_why(error)}")
            if champion.loaded is False:
                own.append(f"{monitor.name}: champion not loaded: {champion.detail}")
            run = _last_run(successes.get(monitor.name), now, max_age_hours)
            if run.last_success is None:
                own.append(f"{monitor.name}: no monitoring run has stored results yet")
            elif not run.fresh:
                own.append(f"{monitor.name}: the last successful monitoring run started {run.age_hours:.2f} h ago, "
                           f"more than max_age_hours={max_age_hours:g}")
        models.append(ModelHealth(model=monitor.name, healthy=not own and warehouse.reachable, champion=champion,
                                  last_run=run, alert_channels=_routes(monitor, configured), reasons=own))
        reasons += own
    return HealthResponse(healthy=not reasons, checked_at=datetime.fromtimestamp(now, timezone.utc),
                          warehouse=warehouse, alert_channels=ChannelsHealth(configured=sorted(configured),
                                                                             misconfigured=misconfigured),
                          models=models, reasons=reasons)


@router.get("/api/ml/health", response_model=HealthResponse, dependencies=[Depends(require_read)],
            responses={503: {"model": HealthResponse, "description": "Unhealthy: `reasons` says why."},
                       **responses(401)})
def health(request: Request, max_age_hours: float | None = Query(
        None, gt=0, description="How old the latest successful monitoring run of a model may be, in hours "
                                "(default: $MONITORING_HEALTH_MAX_AGE_HOURS, else 26: a daily window plus slack).")):
    """Per monitored model: champion loaded, last successful monitoring run and its age, alert
    channels configured; and whether the warehouse answers. 200 when healthy, else 503 with reasons."""
    settings = request.app.state.settings
    max_age = max_age_hours if max_age_hours is not None else settings.health_max_age_hours
    key = (max_age, int(time.time()))  # an answer is reused within its second: ages stay right to 1 s
    last = request.app.state.last_health  # this app's: another app in the process has its own settings
    with _health_lock:
        if last.get("key") == key:
            return Response(last["body"], status_code=last["status"], media_type="application/json")
    try:
        wh = request.app.state.reader.warehouse()
    except _NO_ANSWER as error:  # no snapshot or file yet: the same answer, unreachable
        wh = _Unreachable(settings.warehouse, error)
    answer = health_of(wh, settings.monitors, max_age)
    response = JSONResponse(answer.model_dump(mode="json"), status_code=200 if answer.healthy else 503)
    with _health_lock:
        last.update(key=key, body=response.body, status=response.status_code)
    return response


# An app's latest health answer (app.state.last_health) and the (max_age_hours, second) it was computed
# for: under load the checks (the monitors file, the champion's checkpoint, the warehouse) run at most
# once a second.
_health_lock = threading.Lock()


class _Unreachable:
    """A warehouse the reader could not give: every read raises its error."""

    def __init__(self, path: Path, error: Exception):
        self.path, self.error = path, error

    def read(self, *args, **kwargs):
        raise self.error


# --- the seed's Phase 5 metrics JSON ------------------------------------------------------------------------

class ServiceMetrics(BaseModel):
    window_start: datetime | None = None
    window_end: datetime | None = None
    model_version: str | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    error_rate: float | None = None


class ModelMetrics(BaseModel):
    model: str
    current: ServiceMetrics = Field(description="Each metric's value in the latest window that has it.")
    history: list[ServiceMetrics] = Field(description="One entry per window, oldest first.")


class MetricsResponse(BaseModel):
    models: list[ModelMetrics]


_SERVICE_ROWS = """SELECT model_name, model_version, metric_name, metric_value, window_start, window_end
    FROM (SELECT *, row_number() OVER (PARTITION BY model_name, metric_name, window_start
                                       ORDER BY measured_at DESC) AS latest
          FROM ml_performance_metrics
          WHERE data_split = 'production' AND NOT estimated AND metric_name = ANY(?)) AS m
    WHERE latest = 1
    ORDER BY model_name, window_start NULLS FIRST, metric_name"""


def _value(v):
    return None if v is None or v != v else float(v)


def _time(v):
    return None if v is None or v != v else v.to_pydatetime().replace(tzinfo=timezone.utc)  # stored as UTC


def service_metrics(wh: Warehouse) -> MetricsResponse:
    """Production latency quantiles and error rate per model and window (realized, not estimated)."""
    rows = wh.read(_SERVICE_ROWS, [list(SERVICE_METRICS)])
    models = []
    for model, frame in rows.groupby("model_name", sort=True):
        history, current = [], {}
        for start, window in frame.groupby("window_start", sort=True, dropna=False):
            first = window.iloc[0]
            entry = {"window_start": _time(first.window_start), "window_end": _time(first.window_end),
                     "model_version": first.model_version if isinstance(first.model_version, str) else None}
            for r in window.itertuples():
                entry[r.metric_name] = _value(r.metric_value)
                if entry[r.metric_name] is not None:
                    current[r.metric_name] = entry[r.metric_name]
                    current.update({k: entry[k] for k in ("window_start", "window_end", "model_version")})
            history.append(ServiceMetrics(**entry))
        models.append(ModelMetrics(model=str(model), current=ServiceMetrics(**current), history=history))
    return MetricsResponse(models=models)


@router.get("/api/ml/metrics", response_model=MetricsResponse, dependencies=[Depends(require_read)],
            responses=responses(401, 503))
def metrics_json(request: Request) -> MetricsResponse:
    """Per model: inference latency p50/p95/p99 (ms) and error rate of the latest window, and their
    history per window (ml_performance_metrics, production, realized)."""
    return request.app.state.reader.rendered(("service_metrics",), lambda wh, as_of: service_metrics(wh))


@router.get("/metrics", dependencies=[Depends(require_read)], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}},
                             "description": "The Prometheus text format: the same gauges as the textfile."},
                       **responses(401, 503)})
def prometheus_metrics(request: Request) -> Response:
    """The Prometheus exposition of the latest monitoring results, the registry the textfile is written from."""
    text, _ = request.app.state.reader.cached(("prometheus",), lambda wh: generate_latest(registry(wh)))
    return Response(text, media_type=CONTENT_TYPE_PLAIN_0_0_4)
