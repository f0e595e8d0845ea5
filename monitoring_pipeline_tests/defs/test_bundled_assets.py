import dagster as dg

from monitoring_pipeline.definitions import defs
from monitoring_pipeline.defs.bundled_assets import current_profile, data_drift_report, reference_profile


def test_definitions_load_with_the_monitoring_job():
    assert defs.resolve_job_def("monitoring_job") is not None
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"reference_profile", "current_profile", "data_drift_report"} <= keys


def test_bundled_assets_materialize_and_report_no_drift_between_random_splits():
    result = dg.materialize([reference_profile, current_profile, data_drift_report])
    assert result.success
    reports = result.output_for_node("data_drift_report")
    assert set(reports) == {"breast_cancer", "digits"}
    assert reports["breast_cancer"]["n_features"] == 30
    assert reports["digits"]["n_features"] == 4
    for report in reports.values():
        assert report["status"] == "ok"  # two random halves of one data set
    events = result.asset_materializations_for_node("data_drift_report")
    assert "breast_cancer_summary" in events[0].metadata


def test_drift_options_reach_compare_profiles():
    config = dg.RunConfig(ops={"data_drift_report": {"config": {"methods": {"numeric": "psi"},
                                                                 "thresholds": {"numeric": 0.5}}}})
    result = dg.materialize([reference_profile, current_profile, data_drift_report], run_config=config)
    rows = result.output_for_node("data_drift_report")["breast_cancer"]["features"]
    assert {(r["method"], r["threshold"]) for r in rows} == {("psi", 0.5)}
