"""A model's performance over time, realized and estimated kept apart (seed Phase 14 task 14.6).

- ``realized``: the windows' metrics measured on labels (``ml_performance_metrics``, not estimated);
- ``estimated``: windows whose labels have not arrived, answered by a label-free estimate, each with
  its interval, method and reliability flag and reason (an estimated row is replaced by the realized
  one when the labels come);
- ``estimate_history``: every estimate the pipeline made (``performance_estimates``), beside the
  realized value once known, its error and whether the interval covered it;
- ``reference``: each version's metrics on its reference data (what a window is expected to reach).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from monitoring_pipeline.storage import Warehouse

from . import errors
from .auth import require_read
from .drift_routes import known_models
from .reader import records

router = APIRouter(tags=["performance"])


class RealizedMetric(BaseModel):
    window_start: datetime | None = None
    window_end: datetime | None = None
    model_version: str | None = None
    metric: str
    value: float | None = None
    data_split: str | None = Field(None, description="production (a window) or eval (a CI run)")
    measured_at: datetime | None = None


class EstimatedMetric(BaseModel):
    window_start: datetime | None = None
    window_end: datetime | None = None
    model_version: str | None = None
    metric: str
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    reliable: bool | None = Field(None, description="an unreliable estimate never passes an SLO")
    reliability_reason: str | None = None
    method: str | None = None
    measured_at: datetime | None = None


class EstimateRecord(BaseModel):
    window_start: datetime | None = None
    window_end: datetime | None = None
    model_version: str | None = None
    metric: str
    method: str | None = None
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    reliable: bool | None = None
    reliability_reason: str | None = None
    n_rows: int | None = None
    realized: float | None = Field(None, description="the value measured once the labels came; null before")
    n_labeled: int | None = None
    error: float | None = Field(None, description="estimate - realized")
    covered: bool | None = Field(None, description="the realized value is inside [ci_low, ci_high]")
    estimated_at: datetime | None = None
    realized_at: datetime | None = None


class ReferenceMetric(BaseModel):
    model_version: str | None = None
    metric: str
    value: float | None = None
    measured_at: datetime | None = None


class PerformanceResponse(BaseModel):
    model_id: str
    as_of: datetime = Field(description="when the API's snapshot of the warehouse was read (UTC)")
    realized: list[RealizedMetric]
    estimated: list[EstimatedMetric]
    estimate_history: list[EstimateRecord]
    reference: list[ReferenceMetric]


def performance(wh: Warehouse, model: str, metric: str | None, start: date | None, end: date | None) -> dict:
    """The four parts of a model's performance answer, oldest window first."""
    last = end + timedelta(days=1) if end is not None and end < date.max else None  # windows before the next day
    # Only the filters given become conditions (PostgreSQL cannot type a bare `? IS NULL` bound on the server).
    given = [(condition, value) for condition, value in (("model_name = ?", model), ("metric_name = ?", metric),
                                                          ("window_start >= ?", start), ("window_start < ?", last))
             if value is not None]
    window = " AND ".join(condition for condition, _ in given)
    params = [value for _, value in given]
    metrics = records(wh.read(
        f"""SELECT window_start, window_end, model_version, metric_name AS metric, metric_value, data_split,
                   estimated, ci_low, ci_high, reliable, reliability_reason, method, measured_at
            FROM ml_performance_metrics WHERE {window} AND data_split <> 'reference'
            ORDER BY window_start NULLS LAST, measured_at, metric_name""", params))
    history = records(wh.read(
        f"""SELECT window_start, window_end, model_version, metric_name AS metric, method, estimate, ci_low, ci_high,
                   reliable, reliability_reason, n_rows, realized, n_labeled, estimate - realized AS error,
                   realized BETWEEN ci_low AND ci_high AS covered, estimated_at, realized_at
            FROM performance_estimates WHERE {window}
            ORDER BY window_start NULLS LAST, estimated_at, metric_name""", params))
    reference = records(wh.read(
        """SELECT model_version, metric_name AS metric, metric_value AS value, measured_at
           FROM ml_performance_metrics WHERE model_name = ? AND metric_name = coalesce(?, metric_name)
             AND data_split = 'reference' ORDER BY measured_at, model_version, metric_name""", [model, metric]))
    return {
        "realized": [RealizedMetric(**{k: r[k] for k in RealizedMetric.model_fields if k != "value"},
                                    value=r["metric_value"]) for r in metrics if not r["estimated"]],
        "estimated": [EstimatedMetric(**{k: r[k] for k in EstimatedMetric.model_fields if k != "estimate"},
                                      estimate=r["metric_value"]) for r in metrics if r["estimated"]],
        "estimate_history": [EstimateRecord(**r) for r in history],
        "reference": [ReferenceMetric(**r) for r in reference],
    }


@router.get("/monitoring/performance/{model_id}", response_model=PerformanceResponse,
            dependencies=[Depends(require_read)], responses=errors.responses(401, 404, 503),
            summary="A model's metrics over time, realized and estimated apart")
def model_performance(request: Request, model_id: str,
                      metric: str | None = Query(None, description="only this metric (e.g. accuracy)"),
                      start: date | None = Query(None, description="windows from this day on (inclusive)"),
                      end: date | None = Query(None, description="windows up to this day (inclusive)"),
                      ) -> PerformanceResponse:
    """Realized metrics, label-free estimates (interval, reliability), every estimate beside its realized
    value, and the reference metrics of each version; 404 naming the known models for another."""
    if start is not None and end is not None and start > end:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "start"), "input": str(start),
                                       "msg": f"start ({start}) must not be after end ({end})"}])
    monitors = request.app.state.settings.monitors

    reader = request.app.state.reader
    names, _ = reader.cached(("known_models",), lambda wh: known_models(wh, monitors)[0])
    if model_id not in names:
        raise HTTPException(404, f"no monitored model {model_id!r}; known models: " + (", ".join(names) or "none yet"))
    return reader.rendered(("performance", model_id, metric, start, end), lambda wh, as_of: PerformanceResponse(
        model_id=model_id, as_of=as_of, **performance(wh, model_id, metric, start, end)))
