"""Drift status and history (seed Phase 14 task 14.6).

``GET /monitoring/drift/status`` answers for every monitored model (the monitors file's, plus any
model the warehouse has results of) with its latest window: the data, prediction and concept drift
rows ``ml_drift_history`` holds for it, an overall drift score (the share of its input features that
drifted), its open alerts and when the window was last checked. ``GET /monitoring/drift/{model_id}``
is one model's; ``GET /monitoring/drift/history`` pages through every stored drift row.

Answers come from the API's snapshot of the warehouse (``as_of``), computed once per snapshot.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from monitoring_pipeline.lib.monitors import MonitorConfigError, load_monitors
from monitoring_pipeline.storage import Warehouse

from . import errors
from .alert_routes import AlertOut, open_alert_list
from .auth import require_read
from .errors import Unavailable
from .reader import records

router = APIRouter(tags=["drift"])

DriftType = Literal["data", "prediction", "concept"]

# A window's rows: the partition key of the window assets is '<day>|<model>' (Tier 5 CI runs store
# 'run:<id>' periods; they are history, not a window).
_WINDOW_ROW = "partition_key = current_period || '|' || model_name"
# A window's day; NULL for a CI run's period (both dialects evaluate the CAST only where the CASE matches).
_PERIOD_DAY = "CASE WHEN current_period LIKE '____-__-__' THEN CAST(current_period AS DATE) END"


class DriftResult(BaseModel):
    model_name: str
    model_version: str | None = None
    drift_type: str = Field(description="data | prediction | concept")
    feature: str = Field(description="the feature, or __model__ for a whole-model concept signal")
    method: str | None = None
    statistic: float | None = None
    p_value: float | None = Field(None, description="after the report's multiple-testing correction")
    p_value_raw: float | None = Field(None, description="the test's own")
    effect_size: float | None = Field(None, description="in the method's unit")
    threshold: float | None = None
    severity: str | None = Field(None, description="ok | warn | alert")
    drift_detected: bool
    window: str | None = Field(None, description="the period judged: a window's day, or run:<id> of a CI run")
    baseline: str | None = Field(None, description="what it was judged against")
    created_at: datetime | None = None


class DriftStatus(BaseModel):
    """Seed 14.6's DriftStatusResponse; ``prediction_drift`` is its ``model_drift``."""

    model_id: str
    monitored: bool = Field(description="declared in the monitors file")
    window: str | None = Field(None, description="the latest window's day; null before any")
    model_version: str | None = Field(None, description="the version judged in that window")
    overall_drift_score: float | None = Field(
        None, description="share of the window's input features whose drift was detected (0-1): the data "
                          "drift report's drift_share; null without data drift rows")
    drift_detected: bool = Field(description="any drift row of the window detected drift")
    data_drift: list[DriftResult]
    prediction_drift: list[DriftResult]
    concept_drift: list[DriftResult]
    alerts: list[AlertOut] = Field(description="the model's open alerts, newest first")
    last_checked: datetime | None = Field(None, description="when the window's drift was last computed")


class DriftStatusList(BaseModel):
    as_of: datetime = Field(description="when the API's snapshot of the warehouse was read (UTC)")
    models: list[DriftStatus]


class ModelDrift(DriftStatus):
    as_of: datetime


class DriftHistory(BaseModel):
    as_of: datetime
    total: int = Field(description="rows matching the filters")
    limit: int
    offset: int
    next_offset: int | None = Field(None, description="the offset of the next page; null on the last")
    rows: list[DriftResult]


_COLUMNS = """model_name, model_version, drift_type, feature_name AS feature, method, test_statistic AS statistic,
              p_value, p_value_raw, effect_size, threshold, severity, drift_detected, current_period AS window,
              baseline_period AS baseline, created_at"""


def known_models(wh: Warehouse, monitors_file) -> tuple[list[str], set[str]]:
    """(every model the API answers for, sorted; the ones the monitors file declares)."""
    try:
        declared = {m.name for m in load_monitors(monitors_file).monitors} if monitors_file.exists() else set()
    except MonitorConfigError as error:
        raise Unavailable(f"the monitors file cannot be read: {error}", retry_after=30) from error
    found = set(wh.read("""SELECT model_name FROM ml_drift_history UNION SELECT model_name FROM ml_monitoring_alerts
                           UNION SELECT model_name FROM ml_performance_metrics
                           UNION SELECT model_name FROM model_registry""")["model_name"].dropna())
    return sorted(declared | found), declared


def statuses(wh: Warehouse, monitors_file) -> dict[str, DriftStatus]:
    """Every model's latest window, by model name."""
    names, declared = known_models(wh, monitors_file)
    rows = records(wh.read(f"""
        WITH latest AS (SELECT model_name, max(current_period) AS day FROM ml_drift_history
                        WHERE {_WINDOW_ROW} GROUP BY model_name)
        SELECT {_COLUMNS} FROM ml_drift_history h JOIN latest USING (model_name)
        WHERE h.current_period = latest.day AND h.{_WINDOW_ROW}
        ORDER BY model_name, drift_type, feature_name, method"""))
    alerts = open_alert_list(wh)
    out = {}
    for name in names:
        mine = [DriftResult(**r) for r in rows if r["model_name"] == name]
        by_type = {t: [r for r in mine if r.drift_type == t] for t in ("data", "prediction", "concept")}
        data = by_type["data"]
        out[name] = DriftStatus(
            model_id=name, monitored=name in declared, window=mine[0].window if mine else None,
            model_version=next((r.model_version for r in mine if r.model_version), None),
            overall_drift_score=sum(r.drift_detected for r in data) / len(data) if data else None,
            drift_detected=any(r.drift_detected for r in mine), data_drift=data,
            prediction_drift=by_type["prediction"], concept_drift=by_type["concept"],
            alerts=[a for a in alerts if a.model_name == name],
            last_checked=max((r.created_at for r in mine if r.created_at), default=None))
    return out


def _statuses(request: Request) -> tuple[dict[str, DriftStatus], datetime]:
    monitors = request.app.state.settings.monitors
    return request.app.state.reader.cached(("drift_status",), lambda wh: statuses(wh, monitors))


@router.get("/monitoring/drift/status", response_model=DriftStatusList, dependencies=[Depends(require_read)],
            responses=errors.responses(401, 503), summary="Every monitored model's latest drift status")
def drift_status(request: Request) -> DriftStatusList:
    """Every monitored model with its latest window's drift rows, overall drift score and open alerts."""
    monitors = request.app.state.settings.monitors
    return request.app.state.reader.rendered(
        ("drift_status",), lambda wh, as_of: DriftStatusList(as_of=as_of, models=list(statuses(wh, monitors).values())))


def history(wh: Warehouse, *, model: str | None, drift_type: str | None, feature: str | None, start: date | None,
            end: date | None, drifted: bool | None, limit: int, offset: int) -> tuple[int, list[dict]]:
    # Only the filters given become conditions (PostgreSQL cannot type a bare `? IS NULL` bound on the
    # server); a day filter keeps window rows (current_period a day) and leaves CI runs' run:<id> periods out.
    filters = [("model_name = ?", model), ("drift_type = ?", drift_type), ("feature_name = ?", feature),
               ("drift_detected = ?", drifted), (f"{_PERIOD_DAY} >= ?", start), (f"{_PERIOD_DAY} <= ?", end)]
    given = [(condition, value) for condition, value in filters if value is not None]
    where = " AND ".join(condition for condition, _ in given) or "true"
    params = [value for _, value in given]
    total = int(wh.read(f"SELECT count(*) AS n FROM ml_drift_history WHERE {where}", params)["n"][0])
    rows = records(wh.read(f"""SELECT {_COLUMNS} FROM ml_drift_history WHERE {where}
                               ORDER BY current_period DESC NULLS LAST, model_name, drift_type, feature_name, method,
                                        created_at
                               LIMIT ? OFFSET ?""", [*params, limit, offset]))
    return total, rows


@router.get("/monitoring/drift/history", response_model=DriftHistory, dependencies=[Depends(require_read)],
            responses=errors.responses(401, 503), summary="Stored drift rows, newest window first, paginated")
def drift_history(request: Request,
                  model: str | None = Query(None, description="only this model's rows"),
                  drift_type: DriftType | None = Query(None, description="data | prediction | concept"),
                  feature: str | None = Query(None, description="only this feature (or __model__)"),
                  start: date | None = Query(None, description="windows from this day on (inclusive)"),
                  end: date | None = Query(None, description="windows up to this day (inclusive)"),
                  drifted: bool | None = Query(None, description="only rows that detected (true) or not (false)"),
                  limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=2**62)) -> DriftHistory:
    """Drift rows (every window, and CI runs' rows unless a day filter is given), newest window first."""
    if start is not None and end is not None and start > end:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "start"), "input": str(start),
                                       "msg": f"start ({start}) must not be after end ({end})"}])
    def build(wh: Warehouse, as_of: datetime) -> DriftHistory:
        total, rows = history(wh, model=model, drift_type=drift_type, feature=feature, start=start, end=end,
                              drifted=drifted, limit=limit, offset=offset)
        return DriftHistory(as_of=as_of, total=total, limit=limit, offset=offset,
                            next_offset=offset + limit if offset + limit < total else None,
                            rows=[DriftResult(**r) for r in rows])

    return request.app.state.reader.rendered(
        ("drift_history", model, drift_type, feature, start, end, drifted, limit, offset), build)


@router.get("/monitoring/drift/{model_id}", response_model=ModelDrift, dependencies=[Depends(require_read)],
            responses=errors.responses(401, 404, 503), summary="One model's latest drift status")
def model_drift(request: Request, model_id: str) -> ModelDrift:
    """The model's latest window (as in the status list); 404 naming the known models for another."""
    found, _ = _statuses(request)
    if model_id not in found:
        raise HTTPException(404, f"no monitored model {model_id!r}; known models: "
                                 + (", ".join(found) or "none yet"))
    return request.app.state.reader.rendered(
        ("model_drift", model_id), lambda wh, as_of: ModelDrift(**_statuses(request)[0][model_id].model_dump(),
                                                                as_of=as_of))
