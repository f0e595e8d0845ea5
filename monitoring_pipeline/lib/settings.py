"""Where the embedded default keeps its files, and the environment variables that move them.

The defaults live in the project's ``data/`` folder when the package runs from a
checkout (an editable install), else in ``./data`` of the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

WAREHOUSE_ENV = "MONITORING_WAREHOUSE"
MONITORS_ENV = "MONITORING_MONITORS"
MODELS_ENV = "MONITORING_MODELS"
REPORTS_ENV = "MONITORING_REPORTS"
METRICS_ENV = "MONITORING_METRICS"
SPOOL_ENV = "MONITORING_SPOOL"


def data_dir() -> Path:
    checkout = Path(__file__).resolve().parents[2] / "data"
    return checkout if (checkout / "monitors.yaml").exists() else Path.cwd() / "data"


def warehouse_path(configured: str | None = None) -> Path | str:
    """The warehouse's target: resource config, else $MONITORING_WAREHOUSE, else data/warehouse.duckdb.
    A ``postgresql://`` (or ``postgres://``) URL is returned as given (text: a Path would fold its
    ``//``); anything else is a DuckDB file's Path. ``open_warehouse`` takes either."""
    chosen = configured or os.environ.get(WAREHOUSE_ENV)
    if chosen and chosen.lower().startswith(("postgresql://", "postgres://")):  # storage.warehouse.SCHEMES
        return chosen
    return Path(chosen) if chosen else data_dir() / "warehouse.duckdb"


def warehouse(configured: str | None = None, **options):
    """``open_warehouse`` of the configured target (see ``warehouse_path``): PostgreSQL for a URL,
    else DuckDB. ``options`` are open_warehouse's (timeout, read_only, create)."""
    from monitoring_pipeline.storage import open_warehouse  # settings itself imports no database client

    return open_warehouse(warehouse_path(configured), **options)


def monitors_path(configured: str | None = None) -> Path:
    """An explicit path, else $MONITORING_MONITORS, else data/monitors.yaml."""
    chosen = configured or os.environ.get(MONITORS_ENV)
    return Path(chosen) if chosen else data_dir() / "monitors.yaml"


def models_dir() -> Path:
    """Where checkpoints go: data/models/<model>/<version>/ (next to the warehouse's default)."""
    return Path(os.environ.get(MODELS_ENV) or data_dir() / "models")


def metrics_path(configured: str | None = None) -> Path:
    """An explicit path, else $MONITORING_METRICS, else data/metrics/monitoring.prom (the file
    node_exporter's textfile collector reads)."""
    chosen = configured or os.environ.get(METRICS_ENV)
    return Path(chosen) if chosen else data_dir() / "metrics" / "monitoring.prom"


def reports_dir() -> Path:
    """Where HTML reports go: $MONITORING_REPORTS, else data/reports/<model>/<window>.html."""
    return Path(os.environ.get(REPORTS_ENV) or data_dir() / "reports")


def spool_dir(configured: str | None = None) -> Path:
    """Where the HTTP API keeps accepted predictions and labels until the pipeline ingests them:
    an explicit path, else $MONITORING_SPOOL, else data/spool (next to the warehouse's default)."""
    chosen = configured or os.environ.get(SPOOL_ENV)
    return Path(chosen) if chosen else data_dir() / "spool"
