"""How routes read the warehouse. PLACEHOLDER (issue 15, H2 replaces it with a snapshot the
API refreshes, so a read never waits on a run that writes): routes call ``reader.warehouse()``
for a read-only ``Warehouse`` and ``reader.refresh()`` after a write of their own."""

from __future__ import annotations

from monitoring_pipeline.storage import Warehouse

from .settings import ApiSettings


class Reader:
    def __init__(self, settings: ApiSettings):
        self.settings = settings

    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings.warehouse, timeout=self.settings.write_timeout, read_only=True)

    def refresh(self) -> None:
        """Make the next read see every write committed so far."""

    def close(self) -> None:
        """Release what the reader holds (the app's shutdown)."""
