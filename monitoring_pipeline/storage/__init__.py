"""The DuckDB warehouse: schema, migrations and typed reads and writes of core's results."""

from .warehouse import Warehouse, WarehouseError

__all__ = ["Warehouse", "WarehouseError"]
