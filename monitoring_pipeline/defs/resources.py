"""Resources: the warehouse, bound once by key and asked for by parameter name."""

from typing import TYPE_CHECKING

import dagster as dg

from monitoring_pipeline.lib.settings import warehouse
from monitoring_pipeline.storage import Warehouse

from . import pool_wait  # noqa: F401 (a run waiting for the pool sleeps instead of spinning: see the module)
from .partitions import register_run_day

if TYPE_CHECKING:  # psycopg is imported only when the warehouse is PostgreSQL
    from monitoring_pipeline.storage.postgres import PostgresWarehouse

# The Dagster concurrency pool of every step that writes the warehouse. DuckDB lets one process
# write a file, so the embedded default's instance limits it to 1 (data/dagster_home/dagster.yaml);
# a PostgreSQL warehouse takes many writers and lifts it (configs/deploy/README.md). A step that starts
# child runs in its own process (closed_loop_job's run_story) stays out of it: its children would
# wait for the slot it held.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse: ``path`` (a DuckDB file, or a ``postgresql://`` URL for PostgreSQL) overrides
    $MONITORING_WAREHOUSE and data/warehouse.duckdb."""

    path: str | None = None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # every window step asks for the warehouse: its run's day is registered before the step starts
        if context.dagster_run is not None and context.instance is not None:
            register_run_day(context.instance, context.dagster_run.tags, context.log)

    def get(self) -> "Warehouse | PostgresWarehouse":
        return warehouse(self.path)
