"""What the API serves and how: read from the environment when the app is built.

    MONITORING_WAREHOUSE     the warehouse: a DuckDB file or a postgresql:// URL (default data/warehouse.duckdb)
    MONITORING_SPOOL         where accepted predictions and labels wait (default data/spool)
    MONITORING_MONITORS      the monitored models (default data/monitors.yaml)
    MONITORING_API_TOKEN     the bearer token writes need (and reads, off loopback)
    MONITORING_API_HOST      the address the server is bound to (``serve`` sets it)
    MONITORING_DAGSTER_URL   the Dagster webserver that launches checks (default http://127.0.0.1:3000)
    MONITORING_HEALTH_MAX_AGE_HOURS  how old a model's last successful run may be for /api/ml/health (default 26)
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from monitoring_pipeline.lib.settings import monitors_path, spool_dir, warehouse_path

TOKEN_ENV = "MONITORING_API_TOKEN"
HOST_ENV = "MONITORING_API_HOST"
DAGSTER_URL_ENV = "MONITORING_DAGSTER_URL"
HEALTH_MAX_AGE_ENV = "MONITORING_HEALTH_MAX_AGE_HOURS"
DEFAULT_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost, or 0.0.0.0-like wildcards below
        return False


def _hours(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        hours = float(raw)
    except ValueError:
        hours = float("nan")
    if not hours > 0 or hours == float("inf"):
        raise ValueError(f"${name} must be a positive number of hours, got {raw!r}")
    return hours


@dataclass(frozen=True)
class ApiSettings:
    warehouse: Path | str  # a DuckDB file's path, or a postgresql:// URL
    spool: Path
    monitors: Path
    host: str = DEFAULT_HOST
    dagster_url: str = "http://127.0.0.1:3000"
    token: str | None = field(default=None, repr=False)  # never printed
    write_timeout: float = 10.0  # seconds a write waits for a run that holds the warehouse
    snapshot_max_age: float = 10.0  # seconds before a read refreshes the API's snapshot of the warehouse
    health_max_age_hours: float = 26.0  # /api/ml/health: a daily window (00:30 for yesterday) plus slack

    @classmethod
    def from_env(cls) -> ApiSettings:
        return cls(warehouse=warehouse_path(), spool=spool_dir(), monitors=monitors_path(),
                   host=os.environ.get(HOST_ENV) or DEFAULT_HOST,
                   dagster_url=(os.environ.get(DAGSTER_URL_ENV) or "http://127.0.0.1:3000").rstrip("/"),
                   token=os.environ.get(TOKEN_ENV) or None, health_max_age_hours=_hours(HEALTH_MAX_AGE_ENV, 26.0))

    @property
    def reads_open(self) -> bool:
        """Reads need no token only when the server is reachable from this machine alone."""
        return is_loopback(self.host)
