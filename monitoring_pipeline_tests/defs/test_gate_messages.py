"""A failed gate says what failed in one line: in the check's description (the UI's check page),
in its metadata, and at ERROR in the run's log (what the CLI and a CI log show)."""

import os
from pathlib import Path

import dagster as dg

from monitoring_pipeline.core.rounding import fmt_sig
from monitoring_pipeline.defs.metadata import drifted_effects_line, gate_line
from monitoring_pipeline.defs.tier5 import tier5_line

from .conftest import DAY, MODEL, config_of, file_monitor, run_window, traffic_file

WINDOW = f"{DAY}|{MODEL}"


def error_lines(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.level == 40 and e.user_message]


def test_a_drift_gate_failure_is_one_line_naming_each_drifted_feature_with_method_and_value(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", shift={"mean radius": 1.4, "mean perimeter": 1.4, "mean area": 1.8})
    instance = dg.DagsterInstance.ephemeral()
    result = run_window(config_of(file_monitor(path)), warehouse, instance=instance)
    assert not result.success
    gate = {e.check_name: e for e in result.get_asset_check_evaluations()}["no_drift_alert"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    line = gate.description
    assert "\n" not in line and line.startswith(f"no_drift_alert failed for {WINDOW}: ")
    assert gate.metadata["message"].value == line
    report = Path(os.environ["MONITORING_REPORTS"]) / MODEL / f"{DAY}_{MODEL}.html"
    assert report.exists() and line.endswith(f"; report: {report}")
    drifted = [r for r in result.output_for_node("data_drift_report")["features"] if r["drifted"]]
    assert {"mean radius", "mean perimeter", "mean area"} <= {r["name"] for r in drifted}
    for r in drifted:  # each drifted feature, in its method's unit, rounded, with its severity
        assert f"{r['name']} {r['method']} {fmt_sig(r['effect_size'])} ({r['severity']})" in line
    assert line.count(" (alert)") + line.count(" (warn)") == len(drifted)
    assert line in error_lines(instance, result.run_id)  # logged at ERROR before the failure


def test_a_passing_gate_logs_no_error_and_says_it_passed(warehouse):
    from .conftest import bundled_monitor

    instance = dg.DagsterInstance.ephemeral()
    result = run_window(config_of(bundled_monitor()), warehouse, instance=instance)
    assert result.success
    gates = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["window_gate"]}
    assert set(gates) == {"data_quality_passed", "no_drift_alert", "no_confirmed_regression"}
    assert all(g.passed and g.description.startswith("passed") for g in gates.values())
    assert error_lines(instance, result.run_id) == []


def test_gate_line_is_one_line_and_names_the_report_when_there_is_one():
    assert gate_line("g", "2026-01-04|m", "a\nb  c", "/r.html") == "g failed for 2026-01-04|m: a b c; report: /r.html"
    assert gate_line("g", "w", "x", None, failed=False) == "g warned for w: x"
    rows = [{"name": "contrast", "method": "wasserstein", "effect_size": 2.5912, "severity": "alert"},
            {"name": "brightness", "method": "wasserstein", "effect_size": None, "severity": "alert"}]
    assert drifted_effects_line(rows) == ("contrast wasserstein 2.591 (alert), "
                                          "brightness wasserstein beyond float range (alert)")


def test_tier5_line_names_the_run_the_reasons_and_the_report():
    report = {"status": "fail", "run_id": 3, "task_name": "digits", "candidate_version": "lr",
              "reasons": ["accuracy regressed by -29.6% (0.980 -> 0.683)", "f1_macro regressed by -30.8%"],
              "summary": "Candidate regressed accuracy by -29.6%", "report": "artifact 9 in /w.duckdb"}
    assert tier5_line(report) == (
        "tier5_report_status_is_not_fail failed for Tier 5 run 3 (digits, candidate lr): accuracy regressed by "
        "-29.6% (0.980 -> 0.683); f1_macro regressed by -30.8%; report: artifact 9 in /w.duckdb")
    assert tier5_line({**report, "status": "warn"}).startswith("tier5_report_status_is_not_fail warned for")
    assert tier5_line({**report, "status": "ok"}) == "passed: Candidate regressed accuracy by -29.6%"


def test_the_log_channel_writes_each_alert_to_the_run_log_not_to_stderr(tmp_path, warehouse, caplog):
    caplog.set_level("DEBUG", logger="monitoring_pipeline.alerts")
    path = traffic_file(tmp_path / "t.csv", shift={"mean radius": 1.4, "mean perimeter": 1.4, "mean area": 1.8})
    instance = dg.DagsterInstance.ephemeral()
    result = run_window(config_of(file_monitor(path)), warehouse, instance=instance)
    alerts = warehouse.get().read("SELECT alert_id FROM ml_monitoring_alerts WHERE model_name = ?", [MODEL])
    assert len(alerts) > 0
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == 30 and e.user_message]
    for alert_id in alerts["alert_id"]:  # every alert's message is in the run's log, at WARNING
        assert any(alert_id in w for w in warnings), alert_id
    # not through the module's Python logger, which has no handler: Python's last resort would
    # print each alert raw on stderr, past every Dagster log level
    assert [r for r in caplog.records if r.name == "monitoring_pipeline.alerts"] == []
