"""One unit per number: a feature's effect in its method's unit and its JS yardstick, each named;
floats rounded for people (4 significant digits) in the UI, exact in the warehouse; the model
version in every window asset's metadata."""

import math

import dagster as dg
import numpy as np
import pytest

from monitoring_pipeline.core.rounding import fmt_sig, round_sig
from monitoring_pipeline.core.drift import describe_effects, feature_effect
from monitoring_pipeline.core.status import summarize
from monitoring_pipeline.defs.metadata import rounded

from .conftest import MODEL, config_of, file_monitor, run_window, traffic_file

WINDOW_ASSETS = ("traffic_window", "current_profile", "data_drift_report", "prediction_drift_report", "eval_metrics",
                 "baseline_comparison", "concept_drift_report", "monitoring_summary", "window_gate")


@pytest.mark.parametrize("value,expected", [
    (0.5243917, 0.5244), (1301.52, 1302.0), (2.5901, 2.59), (-0.000123456, -0.0001235), (123456.0, 123500.0),
    (np.float64(0.123456), 0.1235), (0.0, 0.0), (None, None), (3, 3), (True, True)])
def test_round_sig_keeps_four_significant_digits(value, expected):
    assert round_sig(value) == expected and type(round_sig(value)) is type(expected)


def test_round_sig_keeps_nan_and_inf_and_refuses_what_is_not_a_number():
    assert math.isnan(round_sig(float("nan"))) and round_sig(float("inf")) == math.inf
    assert round_sig(-math.inf) == -math.inf
    with pytest.raises(ValueError, match="real number"):
        round_sig("0.5")
    assert [fmt_sig(v) for v in (None, float("nan"), math.inf, 1301.52, 0.5243917, 2.5901, 1e-7, 7)] == [
        "n/a", "nan", "inf", "1302", "0.5244", "2.59", "1e-07", "7"]


def test_rounded_metadata_rounds_floats_only():
    out = rounded({"a": 0.123456789, "b": None, "c": np.float64(1301.5), "d": 3, "e": True, "s": "0.123456789",
                   "f": dg.MetadataValue.float(2.345678), "n": math.nan})
    assert out["a"] == dg.MetadataValue.float(0.1235) and out["c"] == dg.MetadataValue.float(1302.0)
    assert out["f"] == dg.MetadataValue.float(2.346) and math.isnan(out["n"].value)
    assert (out["b"], out["d"], out["e"], out["s"]) == (None, 3, True, "0.123456789")


def test_a_feature_effect_names_its_method_and_its_js_yardstick():
    row = {"name": "contrast", "method": "wasserstein", "effect_size": 1.18234, "js": 0.524391, "drifted": True,
           "threshold": 0.1}
    assert feature_effect(row) == "contrast: wasserstein 1.182, JS 0.5244"
    assert feature_effect({**row, "method": "jensenshannon", "effect_size": 0.31}) == "contrast: jensenshannon 0.31"
    assert feature_effect({**row, "js": None}) == "contrast: wasserstein 1.182"  # a kind without histograms
    assert feature_effect({**row, "effect_size": None}) == "contrast: wasserstein beyond float range, JS 0.5244"
    rows = [{**row, "name": f"f{i}"} for i in range(5)]
    assert describe_effects(rows).endswith("; f2: wasserstein 1.182, JS 0.5244 and 2 more")
    sentence = summarize(drift={"status": "alert", "features": [row], "n_features": 4})
    assert sentence == "Severe drift on 1 features (contrast: wasserstein 1.182, JS 0.5244)"


def float_values(metadata: dict) -> dict:
    return {k: v.value for k, v in metadata.items() if isinstance(v, dg.FloatMetadataValue) and v.value is not None}


def test_a_drifted_window_names_units_rounds_for_people_and_keeps_exact_values(tmp_path, warehouse):
    path = traffic_file(tmp_path / "t.csv", shift={"mean radius": 1.4, "mean perimeter": 1.4, "mean area": 1.8})
    result = run_window(config_of(file_monitor(path)), warehouse)
    report = result.output_for_node("data_drift_report")
    drifted = [r for r in report["features"] if r["drifted"]]
    assert len(drifted) >= 3 and all(r["method"] == "wasserstein" and r["js"] is not None for r in drifted)
    drift_meta = result.asset_materializations_for_node("data_drift_report")[0].metadata
    assert "max_drift" not in drift_meta  # a JS value is named as one
    assert drift_meta["max_drift_js"].value == round_sig(report["max_drift"]) != report["max_drift"]
    assert drift_meta["max_drift_feature"].value == max(report["drift_scores"], key=report["drift_scores"].get)
    summary_meta = result.asset_materializations_for_node("monitoring_summary")[0].metadata
    assert summary_meta["max_drift_js"].value == drift_meta["max_drift_js"].value
    # the key numbers again under the model's name: one Plots series per model
    for name in ("accuracy", "max_drift_js", "drift_share"):
        assert summary_meta[f"{name} [{MODEL}]"].value == summary_meta[name].value, name
    for text in (summary_meta["summary"].value, drift_meta["summary"].value):
        for r in drifted[:3]:  # each named feature: its method's unit and its JS yardstick
            assert f"{r['name']}: wasserstein {fmt_sig(r['effect_size'])}, JS {fmt_sig(r['js'])}" in text, text
    # every float the UI shows is rounded to 4 significant digits
    for node in WINDOW_ASSETS:
        for m in result.asset_materializations_for_node(node):
            for key, value in float_values(m.metadata).items():
                assert not math.isfinite(value) or round_sig(value) == value, (node, key, value)
    for e in result.get_asset_check_evaluations():
        for key, value in float_values(e.metadata).items():
            assert not math.isfinite(value) or round_sig(value) == value, (e.check_name, key, value)
    # the warehouse keeps the exact values
    stored = warehouse.get().read("""SELECT feature_name, effect_size FROM ml_drift_history
                                     WHERE drift_type = 'data' AND drift_detected""")
    exact = dict(zip(stored["feature_name"], stored["effect_size"]))
    assert all(exact[r["name"]] == r["effect_size"] for r in drifted)
    assert any(round_sig(r["effect_size"]) != r["effect_size"] for r in drifted)
    # the version that served the window is in every window asset's metadata
    for node in WINDOW_ASSETS:
        meta = result.asset_materializations_for_node(node)[0].metadata
        assert meta["model_version"].value == "logistic_regression", node
    assert result.asset_materializations_for_node("window_gate")[0].metadata["served_by"].value == {
        "logistic_regression": 200}


def test_the_reference_profile_metadata_is_rounded(warehouse):
    from monitoring_pipeline.definitions import build_definitions

    from .conftest import MODEL, bundled_monitor

    defs = build_definitions(config_of(bundled_monitor()), warehouse)
    result = dg.materialize([defs.get_assets_def("reference_profile")], partition_key=MODEL,
                            resources={"warehouse": warehouse}, instance=dg.DagsterInstance.ephemeral())
    meta = result.asset_materializations_for_node("reference_profile")[0].metadata
    stored = warehouse.get().read("SELECT payload FROM artifacts WHERE name = 'reference_inputs'")
    assert len(stored) == 1 and meta["model_version"].value == "logistic_regression"
    floats = float_values(meta)
    assert "reference_accuracy" in floats and all(round_sig(v) == v for v in floats.values()), floats
