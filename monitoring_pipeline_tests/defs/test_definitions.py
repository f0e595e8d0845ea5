import os
import subprocess
import sys
from datetime import datetime

import dagster as dg

from monitoring_pipeline.definitions import defs

from .conftest import bundled_monitor, write_monitors

ASSET_DEPS = {  # a snapshot of the asset graph: a change here is a change of the product
    "reference_profile": set(),
    "traffic_window": {"reference_profile"},
    "current_profile": {"reference_profile", "traffic_window"},
    "data_drift_report": {"reference_profile", "current_profile"},
    "prediction_drift_report": {"reference_profile", "current_profile"},
    "concept_drift_report": {"reference_profile", "traffic_window"},
    "eval_metrics": {"reference_profile", "traffic_window"},
    "baseline_comparison": {"traffic_window"},
    "monitoring_summary": {"traffic_window", "data_drift_report", "prediction_drift_report",
                           "concept_drift_report", "eval_metrics", "baseline_comparison"},
    "monitoring_alerts": {"traffic_window", "data_drift_report", "prediction_drift_report",
                          "concept_drift_report", "eval_metrics", "baseline_comparison", "monitoring_summary"},
    "window_gate": {"monitoring_summary", "monitoring_alerts"},
    "approved_window": {"window_gate"},
    "tier5_report": set(),
    "tier5_deployment": {"tier5_report"},
    "closed_loop_timeline": set(),  # recorded by closed_loop_job, one materialization per day
}


def test_definitions_list_jobs_schedules_sensors_and_assets():
    assert {job.name for job in defs.jobs} == {"monitoring_job", "reference_job",
                                               "retention_job", "tier5_monitoring_job", "simulate_traffic_job",
                                               "retrain_model_job", "rollback_model_job", "closed_loop_job",
                                               "acknowledge_alert_job", "alert_digest_job"}
    schedules = {s.name: s.cron_schedule for s in defs.schedules}
    assert schedules == {"data_drift_every_6_hours": "0 */6 * * *", "daily_monitoring": "30 0 * * *",
                         "weekly_retention": "0 3 * * 0", "daily_alert_digest": "0 8 * * *"}
    sensors = {s.name: s.default_status for s in defs.sensors}
    assert sensors == {"retrain_on_drift_sensor": dg.DefaultSensorStatus.RUNNING,
                       "monitoring_run_failure_sensor": dg.DefaultSensorStatus.RUNNING}
    graph = defs.resolve_asset_graph()
    deps = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
            for key in graph.get_all_asset_keys()}
    assert deps == ASSET_DEPS
    check_names = {key.name for key in graph.asset_check_keys}
    assert check_names == {"traffic_window_latency_slo", "traffic_window_error_rate_slo",
                           "eval_metrics_accuracy_slo", "data_quality_passed", "no_drift_alert",
                           "no_confirmed_regression", "tier5_report_status_is_not_fail"}
    # The blocking gates sit on the last asset of the record: a failed one skips only the release.
    blocking = {key.name for key in graph.asset_check_keys if graph.get_check_spec(key).blocking}
    assert blocking == {"data_quality_passed", "no_drift_alert", "no_confirmed_regression",
                        "tier5_report_status_is_not_fail"}
    gated = {key.asset_key.to_user_string() for key in graph.asset_check_keys if key.name in blocking}
    assert gated == {"window_gate", "tier5_report"}


def test_jobs_run_in_process_by_default():
    for name in ("monitoring_job", "reference_job", "retention_job", "tier5_monitoring_job",
                 "simulate_traffic_job", "retrain_model_job", "rollback_model_job"):
        assert defs.resolve_job_def(name).executor_def.name == "in_process"


def test_schedules_request_one_run_per_model_and_window():
    schedules = {s.name: s for s in defs.schedules}
    with dg.instance_for_test() as instance, dg.build_schedule_context(  # a tick registers its day on the instance
            instance=instance, scheduled_execution_time=datetime(2026, 3, 10, 12, 0)) as context:
        six = schedules["data_drift_every_6_hours"](context)
        daily = schedules["daily_monitoring"](context)
        weekly = schedules["weekly_retention"](context)
        assert instance.get_dynamic_partitions("monitoring_days") == ["2026-03-10", "2026-03-09"]
    # digits_classifier is the story's served model (scheduled: false): its days are simulated.
    assert [str(r.partition_key) for r in six] == ["2026-03-10|breast_cancer_classifier"]
    assert six[0].run_key == "breast_cancer_classifier|2026-03-10|12h"
    assert [str(r.partition_key) for r in daily] == ["2026-03-09|breast_cancer_classifier"]
    assert weekly.run_config == {"ops": {"delete_old_raw_logs": {"config": {"keep_days": 30}}}}
    early = schedules["daily_monitoring"](dg.build_schedule_context(scheduled_execution_time=datetime(2025, 6, 1)))
    assert isinstance(early, dg.SkipReason) and "before" in early.skip_message
    for schedule in schedules.values():
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def _load_definitions_with(path):
    env = {**os.environ, "MONITORING_MONITORS": str(path)}
    return subprocess.run([sys.executable, "-c", "import monitoring_pipeline.definitions"], env=env,
                          capture_output=True, text=True, timeout=300)


def test_an_invalid_monitor_fails_definition_loading_naming_model_and_field(tmp_path):
    bad = write_monitors(tmp_path / "monitors.yaml", bundled_monitor(thresholds={"alpha": 2}))
    out = _load_definitions_with(bad)
    assert out.returncode != 0
    assert "monitor 'breast_cancer_classifier': field 'thresholds.alpha'" in out.stderr


def test_the_monitors_path_is_overridable(tmp_path):
    good = write_monitors(tmp_path / "monitors.yaml", bundled_monitor(name="other_model"))
    env = {**os.environ, "MONITORING_MONITORS": str(good)}
    code = "from monitoring_pipeline.definitions import defs; print(sorted(defs.resolve_job_def('reference_job')" \
           ".partitions_def.get_partition_keys()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "['other_model']" in out.stdout
