"""The default definitions, with one warehouse write that stops in the middle of its transaction:
for the test that kills a run there (test_kill_mid_write.py). Production code has no hook.

$MONITORING_TEST_PAUSE_IN names a storage function (``_write_drift``, ``store_reference_set``);
the first ``write(work)`` whose work that function defined runs the work (its DELETEs and
INSERTs are done, the transaction is open), then writes the Dagster step's key to the file
$MONITORING_TEST_PAUSED and sleeps until the test kills the process. Either warehouse class.
"""

import os
import time
from pathlib import Path

from monitoring_pipeline.definitions import defs  # noqa: F401 (the code location)
from monitoring_pipeline.storage.postgres import PostgresWarehouse
from monitoring_pipeline.storage.warehouse import Warehouse

PAUSE_IN = os.environ["MONITORING_TEST_PAUSE_IN"]
PAUSED = Path(os.environ["MONITORING_TEST_PAUSED"])


def _pausing(write):
    def wrapped(self, work):
        if not work.__qualname__.startswith(f"{PAUSE_IN}.") or PAUSED.exists():
            return write(self, work)

        def work_then_wait(conn):
            result = work(conn)
            import dagster as dg

            PAUSED.write_text(str(dg.OpExecutionContext.get().op_handle))
            time.sleep(3600)  # killed here, its transaction open
            return result

        return write(self, work_then_wait)

    return wrapped


Warehouse.write = _pausing(Warehouse.write)
PostgresWarehouse.write = _pausing(PostgresWarehouse.write)
