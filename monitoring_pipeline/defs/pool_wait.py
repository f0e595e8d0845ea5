"""A step waiting for a pool slot sleeps until its next check instead of spinning (Dagster 1.13.27).

The in-process executor (every job of this project, and ``dagster job execute``) sleeps for
``ActiveExecution.sleep_interval()`` when no step can start. For a step waiting for a pool slot,
that interval comes from ``InstanceConcurrencyContext.interval_to_next_pending_claim_check``,
which returns ``min([0, *times_to_next_check])``. That is never above 0, so the executor never
sleeps: a run waiting for the ``warehouse`` slot spins a CPU core until it gets the slot. The
upstream fix (dagster-io/dagster#20367) was closed unmerged. With DuckDB's limit of 1, eight runs
at once took 512 s against 139 s one after another, because seven spinning runs starved the
one holding the slot. This is the interval the method means: the time until the earliest
pending check, at least 0. With it, the same eight runs took 159 s.
"""

import time

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext


def _interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    if not self._pending_claims or not self._pending_timeouts:
        return 0.0
    return max(0.0, min(self._pending_timeouts.values()) - time.time())


InstanceConcurrencyContext.interval_to_next_pending_claim_check = _interval_to_next_pending_claim_check
