"""The default definitions plus monitoring_job on the multiprocess executor, for the test
that a run with one process per step still works (each step takes its turn at DuckDB)."""

import dagster as dg

from monitoring_pipeline.definitions import defs as default_defs
from monitoring_pipeline.defs.window_assets import GROUP

monitoring_job_multiprocess = dg.define_asset_job(
    "monitoring_job_multiprocess", selection=dg.AssetSelection.groups(GROUP),
    executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2}))

defs = dg.Definitions.merge(default_defs, dg.Definitions(jobs=[monitoring_job_multiprocess]))
