"""``POST /api/ml/baseline``: set what a model's champion is judged against, by hand; and
``GET /api/ml/baseline/{model}``: who set it to what, and when.

The new reference is the traffic the champion served in [start, end), or its training data
(:func:`monitoring_pipeline.lib.baselines.rebaseline`); the next window it serves is judged
against it, and that window's drift rows name it in ``baseline_period``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from monitoring_pipeline.lib.baselines import BaselineError, as_datetime, rebaseline
from monitoring_pipeline.lib.monitors import Monitor, load_monitors
from monitoring_pipeline.lib.references import baseline_of
from monitoring_pipeline.lib.sources import serving_monitor
from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.baselines import baseline_changes

from .auth import require_read, require_write
from .errors import responses
from .reader import UtcDatetime

router = APIRouter(tags=["baselines"])


class BaselineRequest(BaseModel):
    model: str = Field(min_length=1, description="A monitored model's name (monitors.yaml).")
    basis: Literal["windows", "training"] = Field(
        description="windows: the champion's served traffic in [start, end); training: its training data.")
    start: datetime | date | None = Field(None, validate_default=True,
                                          description="First day or time of the range (windows only).")
    end: datetime | date | None = Field(None, validate_default=True,
                                        description="End of the range, exclusive (windows only).")
    by: str = Field(min_length=1, max_length=200, pattern=r"\S", description="Who sets the baseline.")
    note: str | None = Field(None, max_length=2000, description="Why, in a sentence.")

    @field_validator("start", "end")
    @classmethod
    def _range(cls, value, info: ValidationInfo):
        basis = info.data.get("basis")
        if basis == "training" and value is not None:
            raise ValueError(f"basis 'training' takes no {info.field_name}: it is the champion's training data")
        if basis == "windows":
            if value is None:
                raise ValueError(f"basis 'windows' needs {info.field_name}")
            if info.field_name == "end" and info.data.get("start") is not None \
                    and not as_datetime(info.data["start"]) < as_datetime(value):
                raise ValueError("end must be after start")
        return value


class ReferenceSummary(BaseModel):
    features: list[str]
    rows: int = Field(description="Rows the inputs profile was made of.")
    outputs: bool = Field(description="Whether it has an outputs profile (the version's predictions).")
    metrics: dict[str, float] = Field(description="Its reference metrics (from the labels known).")
    calibration_rows: int = Field(description="Labeled rows of its calibration sample.")


class BaselineSet(BaseModel):
    model: str
    version: str | None
    basis: str
    start: UtcDatetime | None
    end: UtcDatetime | None
    rows: int
    set_by: str
    note: str | None
    set_at: UtcDatetime
    reason: str
    reference: ReferenceSummary


class BaselineChange(BaseModel):
    model_version: str | None
    basis: str
    window_start: UtcDatetime | None
    window_end: UtcDatetime | None
    rows: int | None
    set_by: str
    note: str | None
    set_at: UtcDatetime


class BaselineHistory(BaseModel):
    model: str
    champion: str | None
    current: dict = Field(description="The champion's latest baseline record (basis, window, reason, set_by).")
    changes: list[BaselineChange] = Field(description="Baselines set by hand, newest first.")


def _monitor(request: Request, name: str) -> Monitor:
    config = load_monitors(request.app.state.settings.monitors)
    if name not in config.names:
        raise HTTPException(404, f"no monitored model named {name!r}; known: {', '.join(config.names)}")
    return config.monitor(name)


@router.post("/api/ml/baseline", status_code=201, response_model=BaselineSet, dependencies=[Depends(require_write)],
             responses=responses(401, 404, 409, 503))  # 422: FastAPI's own, for a body that does not validate
def set_baseline(body: BaselineRequest, request: Request) -> BaselineSet:
    """Set the champion's reference to its traffic in [start, end) or to its training data; the next
    window it serves is judged against it. Recorded with who and when (GET /api/ml/baseline/{model}).
    409 says why it cannot be set: too few requests of the champion in the range, a range too long to
    replay, no champion, no training reference kept."""
    monitor = _monitor(request, body.model)
    settings = request.app.state.settings
    wh = open_warehouse(settings.warehouse, timeout=settings.write_timeout)
    try:
        result = rebaseline(wh, monitor, basis=body.basis, start=body.start, end=body.end, set_by=body.by.strip(),
                            note=body.note)
    except BaselineError as error:  # the warehouse cannot give what the request asks for: say why
        raise HTTPException(409, str(error)) from error
    request.app.state.reader.refresh()
    return BaselineSet(**result)


def _value(v):
    return None if v is None or v is pd.NaT or (isinstance(v, float) and v != v) else v


@router.get("/api/ml/baseline/{model}", response_model=BaselineHistory, dependencies=[Depends(require_read)],
            responses=responses(401, 404, 503))
def baseline_history(model: str, request: Request) -> BaselineHistory:
    """The baselines set by hand for a model, newest first, and what its champion is judged against now."""
    monitor = _monitor(request, model)
    wh = request.app.state.reader.warehouse()
    version = serving_monitor(wh, monitor).champion
    rows = baseline_changes(wh, model)
    changes = [BaselineChange(**{k: _value(v) for k, v in row.items() if k != "model_name"})
               for row in rows.astype(object).to_dict("records")]
    return BaselineHistory(model=model, champion=version, current=baseline_of(wh, model, version), changes=changes)
