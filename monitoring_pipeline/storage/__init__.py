"""The warehouse (DuckDB embedded, or PostgreSQL): schema, migrations and typed reads and writes of
core's results."""

from .warehouse import Warehouse, WarehouseError, open_warehouse

__all__ = ["Warehouse", "WarehouseError", "open_warehouse"]
