"""The one Definitions object of the code location."""

import dagster as dg

from monitoring_pipeline.defs.bundled_assets import (
    current_profile,
    data_drift_report,
    monitoring_job,
    reference_profile,
)

defs = dg.Definitions(
    assets=[reference_profile, current_profile, data_drift_report],
    jobs=[monitoring_job],
)
