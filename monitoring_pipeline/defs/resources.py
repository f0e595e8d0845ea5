"""Resources: the warehouse, bound once by key and asked for by parameter name."""

import dagster as dg

from monitoring_pipeline.lib.settings import warehouse_path
from monitoring_pipeline.storage import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse; ``path`` overrides $MONITORING_WAREHOUSE and data/warehouse.duckdb."""

    path: str | None = None

    def get(self) -> Warehouse:
        return Warehouse(warehouse_path(self.path))
