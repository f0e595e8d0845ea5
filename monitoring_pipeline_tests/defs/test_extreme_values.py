"""Extreme and infinite feature values through the whole window job (issue 11's rows:
one +inf in a window, values of +-1e200 and +-1e308)."""

import json

import pandas as pd

from .conftest import config_of, count, file_monitor, run_window, traffic_file


def _gate(result, name):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_one_infinite_value_fails_the_quality_gate_naming_its_column(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", n=60)
    frame = pd.read_csv(path)
    frame.loc[7, "mean texture"] = float("inf")
    frame.to_csv(path, index=False)
    result = run_window(config_of(file_monitor(path)), warehouse)
    gate = _gate(result, "data_quality_passed")
    assert not gate.passed
    assert "mean texture" in gate.metadata["features"].value
    assert "infinite" in gate.metadata["message"].value
    assert count(warehouse.get(), "ml_drift_history", "drift_type = 'data'") > 0  # the record is kept


def test_values_near_the_float_limit_are_recorded_finite_and_flagged(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", n=60)
    frame = pd.read_csv(path)
    frame["mean area"] = frame["mean area"].astype(float)
    frame.loc[:29, "mean area"] = [1e308, -1e308, 1e200, -1e200, 1.7e308] * 6
    frame.to_csv(path, index=False)
    result = run_window(config_of(file_monitor(path)), warehouse)
    gate = _gate(result, "data_quality_passed")
    assert not gate.passed and "mean area" in gate.metadata["features"].value  # out of range
    report = result.output_for_node("data_drift_report")
    json.dumps(report, allow_nan=False)
    row = next(r for r in report["features"] if r["name"] == "mean area")
    assert row["drifted"] and row["severity"] == "alert"
    stored = warehouse.get().read(
        "SELECT * FROM ml_drift_history WHERE feature_name = 'mean area' AND drift_detected")
    assert len(stored) >= 1
