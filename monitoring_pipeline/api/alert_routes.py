"""Open alerts with their diagnosis, and acknowledging one.

``GET /monitoring/alerts`` and ``GET /api/ml/alerts`` give the same answer: the open alerts
(neither acknowledged nor resolved), newest first, filtered by model, severity and type, each with
the root-cause diagnosis the window's run stored in its details.

``POST /monitoring/alerts/{alert_id}/acknowledge`` acknowledges an open alert (who, and an optional
note): it is not notified again and leaves the open list. It is idempotent: an alert already
acknowledged answers 200 with its state unchanged (``changed: false``; the first acknowledgement and
its note stand). A resolved alert answers 409 (it is closed: an acknowledgement would not be recorded,
and if the run raises it again it comes back open); an unknown id 404.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from monitoring_pipeline.storage import Warehouse, open_warehouse
from monitoring_pipeline.storage.results import acknowledge_alert, open_alerts

from . import errors
from .auth import require_read, require_write
from .reader import plain, records

router = APIRouter(tags=["alerts"])

Severity = Literal["critical", "warning", "info"]
AlertType = Literal["DRIFT_DETECTED", "PERFORMANCE_DEGRADED", "DATA_QUALITY_ISSUE", "SLO_BREACH"]


class Diagnosis(BaseModel):
    """The window's root-cause diagnosis (core/diagnosis.py): a category, a hypothesis, the evidence
    with numbers, and the action."""

    model_config = ConfigDict(extra="allow")
    category: str | None = Field(None, description="data | model | infrastructure | none")
    hypothesis: str | None = None
    evidence: list[str] = []
    action: str | None = Field(None, description="retrain | rollback | fix_data | investigate_infrastructure | "
                                                 "investigate_model | none")
    recommended_action: str | None = None
    features: list[dict[str, Any]] = Field([], description="the drifted features ranked by contribution")


class AlertOut(BaseModel):
    alert_id: str
    severity: str
    alert_type: str
    drift_type: str | None = None
    model_name: str
    model_version: str | None = None
    window: str | None = Field(None, description="the window's partition key ('<day>|<model>')")
    affected_features: list[str] = []
    message: str
    recommended_action: str | None = None
    status: str = Field(description="open | acknowledged | resolved")
    created_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_note: str | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    diagnosis: Diagnosis | None = Field(None, description="null when the run stored none with the alert")
    details: dict[str, Any] = Field({}, description="the rest of what the run stored (top features, drift share)")


class AlertList(BaseModel):
    as_of: datetime = Field(description="when the API's snapshot of the warehouse was read (UTC)")
    total: int
    alerts: list[AlertOut]


class Acknowledgement(BaseModel):
    by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] = Field(
        description="who acknowledges (a name or an address)")
    note: Annotated[str, StringConstraints(max_length=2000)] | None = Field(None, description="why, kept with it")


class AcknowledgeResult(BaseModel):
    changed: bool = Field(description="true if this request acknowledged it, false if it already was")
    alert: AlertOut
    as_of: datetime


def _json(value, default):
    if value is None:
        return default
    parsed = json.loads(value) if isinstance(value, str) else value
    return plain(parsed) if parsed is not None else default


def alert_out(row: dict) -> AlertOut:
    """An ml_monitoring_alerts row (plain, see reader.records) as the API shows it."""
    details = _json(row.get("details"), {})
    details = details if isinstance(details, dict) else {"value": details}
    diagnosis = details.pop("diagnosis", None)
    features = _json(row.get("affected_features"), [])
    return AlertOut(
        **{k: row.get(k) for k in ("alert_id", "severity", "alert_type", "drift_type", "model_name", "model_version",
                                   "message", "recommended_action", "status", "created_at", "acknowledged_at",
                                   "acknowledged_by", "acknowledged_note", "resolved_at", "resolution")},
        window=row.get("partition_key"), affected_features=[str(f) for f in features if f is not None],
        diagnosis=Diagnosis(**diagnosis) if isinstance(diagnosis, dict) else None, details=details)


def open_alert_list(wh: Warehouse, model: str | None = None, severity: str | None = None,
                    alert_type: str | None = None) -> list[AlertOut]:
    rows = records(open_alerts(wh, model))
    return [alert_out(r) for r in rows
            if (severity is None or r["severity"] == severity) and (alert_type is None or r["alert_type"] == alert_type)]


def _alerts(request: Request, model: str | None, severity: str | None, alert_type: str | None) -> Response:
    def build(wh: Warehouse, as_of: datetime) -> AlertList:
        alerts = open_alert_list(wh, model, severity, alert_type)
        return AlertList(as_of=as_of, total=len(alerts), alerts=alerts)

    return request.app.state.reader.rendered(("alerts", model, severity, alert_type), build)


_FILTERS = {
    "model": Query(None, description="only this model's alerts"),
    "severity": Query(None, description="only this severity"),
    "alert_type": Query(None, alias="type", description="only this type"),
}


@router.get("/monitoring/alerts", response_model=AlertList, dependencies=[Depends(require_read)],
            responses=errors.responses(401, 503), summary="Open alerts with their diagnosis")
def monitoring_alerts(request: Request, model: str | None = _FILTERS["model"],
                      severity: Severity | None = _FILTERS["severity"],
                      alert_type: AlertType | None = _FILTERS["alert_type"]) -> AlertList:
    """The open alerts (neither acknowledged nor resolved), newest first, each with its diagnosis."""
    return _alerts(request, model, severity, alert_type)


@router.get("/api/ml/alerts", response_model=AlertList, dependencies=[Depends(require_read)],
            responses=errors.responses(401, 503), summary="Open alerts with their diagnosis (Phase 5 path)")
def ml_alerts(request: Request, model: str | None = _FILTERS["model"], severity: Severity | None = _FILTERS["severity"],
              alert_type: AlertType | None = _FILTERS["alert_type"]) -> AlertList:
    """The same answer as ``GET /monitoring/alerts``."""
    return _alerts(request, model, severity, alert_type)


@router.post("/monitoring/alerts/{alert_id}/acknowledge", response_model=AcknowledgeResult,
             dependencies=[Depends(require_write)], responses=errors.responses(401, 404, 409, 503),
             summary="Acknowledge an open alert (idempotent)")
def acknowledge(request: Request, body: Acknowledgement,
                alert_id: str = Path(description="the alert's id, as the alerts list gives it")) -> AcknowledgeResult:
    """Acknowledge an open alert: it is not notified again and leaves the open list. Already
    acknowledged: 200 with ``changed: false`` (the first acknowledgement stands). Resolved: 409.
    Unknown: 404."""
    settings, reader = request.app.state.settings, request.app.state.reader
    wh = open_warehouse(settings.warehouse, timeout=settings.write_timeout, create=False)
    changed = acknowledge_alert(wh, alert_id, body.by, body.note)
    found = records(wh.read("SELECT * FROM ml_monitoring_alerts WHERE alert_id = ?", [alert_id]))
    if not found:
        raise HTTPException(404, f"no alert with id {alert_id!r}")
    row = found[0]
    if not changed and row["status"] == "resolved":
        raise HTTPException(409, f"alert {alert_id!r} was resolved at {row['resolved_at']} ({row['resolution']}); "
                                 "a resolved alert is not acknowledged")
    if changed:  # the next read sees it
        reader.refresh()
    return AcknowledgeResult(changed=changed, alert=alert_out(row),
                             as_of=reader.as_of if changed else datetime.now(UTC))
