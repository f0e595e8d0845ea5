"""Model stages, promotion, rollback, and the retraining decisions kept in the warehouse."""

from datetime import datetime

import pytest

from monitoring_pipeline.core.retraining import Decision
from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage import registry
from monitoring_pipeline.storage.results import replace_drift, replace_metrics
from monitoring_pipeline.storage.retraining import observations, past_decisions, record_decision


@pytest.fixture
def wh(warehouse_target):
    return open_warehouse(warehouse_target)


def register(wh, version, stage="challenger", accuracy=0.8):
    registry.register_model(wh, "m", version, stage, framework="sklearn", path=f"/models/m/{version}",
                            metrics={"accuracy": accuracy})


def stages(wh):
    return dict(registry.versions(wh, "m")[["model_version", "stage"]].values.tolist())


def test_one_champion_at_a_time_and_promotion_archives_the_old_one(wh):
    register(wh, "v1", "champion")
    register(wh, "v2")
    assert stages(wh) == {"v1": "champion", "v2": "challenger"}
    assert registry.promote(wh, "m", "v2", "beat v1") == "v1"
    assert stages(wh) == {"v1": "archived", "v2": "champion"}
    assert registry.champion(wh, "m")["metrics"] == {"accuracy": 0.8}


def test_rollback_restores_the_previous_champion_and_can_be_undone(wh):
    register(wh, "v1", "champion")
    register(wh, "v2")
    register(wh, "v3", "archived")  # never champion: not a rollback target
    registry.promote(wh, "m", "v2", "beat v1")
    assert registry.rollback(wh, "m") == ("v2", "v1")
    assert stages(wh) == {"v1": "champion", "v2": "archived", "v3": "archived"}
    assert registry.rollback(wh, "m") == ("v1", "v2")


def test_rollback_without_history_is_a_clear_error(wh):
    with pytest.raises(ValueError, match="no champion"):
        registry.rollback(wh, "m")
    register(wh, "v1", "champion")
    with pytest.raises(ValueError, match="no champion before 'v1'"):
        registry.rollback(wh, "m")


def test_registering_twice_or_an_unknown_stage_is_refused(wh):
    register(wh, "v1", "champion")
    with pytest.raises(ValueError, match="already registered"):
        register(wh, "v1")
    with pytest.raises(ValueError, match="stage must be"):
        register(wh, "v2", "staging")
    with pytest.raises(ValueError, match="no version"):
        registry.promote(wh, "m", "v9", "x")


def test_decisions_are_recorded_and_read_back(wh):
    at = datetime(2026, 3, 4, 6)
    launched = Decision("m", True, "critical_data_drift", "immediate", "critical input drift", "k1", "2026-03-03")
    skipped = Decision("m", False, "critical_data_drift", "immediate", "cooldown", "k1", "2026-03-04")
    record_decision(wh, launched, at, dagster_run_id="abc")
    record_decision(wh, skipped, datetime(2026, 3, 5))
    past = past_decisions(wh, "m")
    assert [(p.run_key, p.decision, p.decided_at) for p in past] == [("k1", "launched", at),
                                                                    ("k1", "skipped", datetime(2026, 3, 5))]
    with pytest.raises(ValueError, match="no trigger"):
        record_decision(wh, Decision("m", False, None, None, "quiet", None, None), at)


def test_observations_combine_drift_severity_and_realized_accuracy_per_day(wh):
    def drift(day, severity, drifted):
        report = {"features": [
            {"name": "a", "method": "wasserstein", "statistic": 0.1, "p_value_adjusted": 0.01, "effect_size": 0.3,
             "threshold": 0.236, "severity": severity, "drifted": drifted},
            {"name": "b", "method": "wasserstein", "statistic": 0.0, "p_value_adjusted": 0.9, "effect_size": 0.0,
             "threshold": 0.236, "severity": "ok", "drifted": False}]}
        replace_drift(wh, report, "data", model_name="m", model_version="v1", baseline_period="ref",
                      current_period=day, asset_key="data_drift_report", partition_key=f"{day}|m", run_id=None)

    drift("2026-03-01", "ok", False)
    drift("2026-03-02", "alert", True)
    drift("2026-03-03", "warn", False)  # not drifted (not significant): counts as ok
    replace_metrics(wh, {"accuracy": 0.7}, model_name="m", model_version="v1", data_split="production",
                    window_start=datetime(2026, 3, 2), window_end=datetime(2026, 3, 3), estimated=False,
                    asset_key="eval_metrics", partition_key="2026-03-02|m", run_id=None)
    obs = observations(wh, "m", baseline_accuracy=0.85)
    assert [(o.window, o.drift, o.accuracy, o.baseline_accuracy) for o in obs] == [
        ("2026-03-01", "ok", None, None), ("2026-03-02", "alert", 0.7, 0.85), ("2026-03-03", "ok", None, None)]
    assert observations(wh, "m", 0.85, version="v2") == []
    assert len(observations(wh, "m", 0.85, version="v1")) == 3
