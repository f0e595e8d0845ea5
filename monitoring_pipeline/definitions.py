"""The one Definitions object of the code location, built from data/monitors.yaml."""

import warnings

import dagster as dg

from monitoring_pipeline.defs.alerting import build_alerting
from monitoring_pipeline.defs.checks import build_checks
from monitoring_pipeline.defs.gate_assets import build_gate_assets
from monitoring_pipeline.defs.loop import build_loop
from monitoring_pipeline.defs.operations import build_jobs, build_schedules
from monitoring_pipeline.defs.ownership import with_ownership
from monitoring_pipeline.defs.performance_assets import build_performance_assets
from monitoring_pipeline.defs.reference_assets import build_reference_assets
from monitoring_pipeline.defs.resources import WarehouseResource
from monitoring_pipeline.defs.shard_assets import build_current_profile
from monitoring_pipeline.defs.story import build_story, timeline_spec
from monitoring_pipeline.defs.summary_assets import build_summary_assets
from monitoring_pipeline.defs.tier5 import (tier5_deployment, tier5_monitoring_job, tier5_report,
                                           tier5_report_status_is_not_fail)
from monitoring_pipeline.defs.window_assets import build_window_assets
from monitoring_pipeline.lib.monitors import MonitorsConfig, load_monitors
from monitoring_pipeline.lib.settings import monitors_path


# Partitioned asset checks and the multi-to-single-dimension mapping are marked beta /
# preview; the pinned Dagster version is what the tests exercise.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def build_definitions(config: MonitorsConfig, warehouse: WarehouseResource | None = None) -> dg.Definitions:
    jobs = build_jobs(config)
    loop_jobs, sensors = build_loop(config)
    alert_jobs, alert_schedules = build_alerting(config)
    gate_assets, gate_checks = build_gate_assets(config)
    return dg.Definitions(
        assets=with_ownership(config, [
            *build_reference_assets(config), *build_window_assets(config), build_current_profile(config),
            *build_performance_assets(config),
            *build_summary_assets(config), *gate_assets, tier5_report, tier5_deployment, timeline_spec]),
        asset_checks=[*build_checks(config), *gate_checks, tier5_report_status_is_not_fail],
        jobs=[*jobs.values(), *loop_jobs.values(), *alert_jobs.values(), build_story(config), tier5_monitoring_job],
        schedules=[*build_schedules(config, jobs), *alert_schedules],
        sensors=sensors,
        resources={"warehouse": warehouse or WarehouseResource()},
    )


defs = build_definitions(load_monitors(monitors_path()))
