"""The FastAPI app: settings, the warehouse reader, the error handlers and every router."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from . import (alert_routes, baseline_routes, check_routes, drift_routes, errors, intake_routes, performance_routes,
               service_routes)
from .reader import Reader
from .settings import ApiSettings

DESCRIPTION = """Read every monitored model's drift, performance and alerts; acknowledge alerts; set a
model's baseline; launch a drift check on the Dagster instance; and send predictions and late labels
to the pipeline (accepted durably before the answer, ingested exactly once).

Writes need `Authorization: Bearer <MONITORING_API_TOKEN>`; reads need it too unless the server is
bound to a loopback address."""

NOT_JSON = {"description": "The body cannot be parsed (not JSON, or not UTF-8).", "content": {"application/json": {
    "schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}}}}

# drift_routes first: /monitoring/drift/status and /history before /monitoring/drift/{model_id}
ROUTERS = (drift_routes, performance_routes, alert_routes, check_routes, baseline_routes, service_routes,
           intake_routes)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The app on ``settings`` (default: from the environment, see :mod:`.settings`)."""
    settings = settings or ApiSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        intake_routes.start_drainer(app)  # ingests the spool while the app serves
        yield
        intake_routes.stop_drainer(app)
        app.state.reader.close()

    app = FastAPI(title="monitoring_pipeline", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.reader = Reader(settings)
    app.state.last_health = {}  # service_routes.health's answer of the current second
    errors.install(app)
    for module in ROUTERS:
        for route in module.router.routes:  # FastAPI answers 400 to a body it cannot parse: say so
            if isinstance(route, APIRoute) and route.body_field is not None:
                route.responses.setdefault(400, NOT_JSON)
        app.include_router(module.router)
    return app
