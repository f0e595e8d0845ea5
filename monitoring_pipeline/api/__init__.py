"""The monitoring HTTP API: read status and history, acknowledge alerts, set baselines, launch
checks, and take in predictions and late labels (``monitoring-pipeline serve``).

``monitoring_pipeline.api:app`` is the app uvicorn serves; its settings come from the
environment when it is imported (:class:`.settings.ApiSettings`). It reads through
``storage`` and ``lib``, launches runs through Dagster's own GraphQL client, and imports no
``defs`` (DESIGN.md: the API is a thin reader and an intake).
"""

from .app import create_app

app = create_app()

__all__ = ["app", "create_app"]
