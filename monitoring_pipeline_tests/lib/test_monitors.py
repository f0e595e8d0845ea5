import pytest

from monitoring_pipeline.lib.monitors import MonitorConfigError, load_monitors, parse_monitors
from monitoring_pipeline.lib.settings import monitors_path

BASE = {"name": "m", "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"}}


def parse(**overrides):
    return parse_monitors({"start_date": "2026-01-01", "monitors": [{**BASE, **overrides}]})


def test_the_default_file_loads_with_a_working_monitor():
    config = load_monitors(monitors_path())
    monitor = config.monitor("breast_cancer_classifier")
    assert monitor.traffic.source == "bundled" and monitor.champion == "logistic_regression"
    assert monitor.thresholds.slo == {"accuracy": 0.9, "latency_p95_ms": 100, "error_rate": 0.05}
    served = config.monitor("digits_classifier")  # the closed loop's model
    assert served.model.kind == "image_cnn" and served.modality == "vision" and not served.scheduled


def test_defaults_fill_what_an_entry_leaves_out():
    monitor = parse().monitors[0]
    assert monitor.traffic.source == "warehouse"
    assert monitor.thresholds.alpha == 0.05 and monitor.thresholds.slo["latency_p95_ms"] == 100.0
    partial = parse(thresholds={"slo": {"accuracy": 0.8}}).monitors[0]
    assert partial.thresholds.slo == {"latency_p95_ms": 100.0, "error_rate": 0.05, "accuracy": 0.8}


@pytest.mark.parametrize("overrides,field", [
    ({"modality": "audio"}, "modality"),
    ({"task": "ranking"}, "task"),
    ({"reference": {"source": "warehouse"}}, "reference.source"),
    ({"reference": {"source": "file"}}, "reference.path"),
    ({"reference": {"source": "bundled", "dataset": "iris"}}, "reference.dataset"),
    ({"reference": {"source": "bundled", "dataset": "breast_cancer", "colour": 1}}, "reference.colour"),
    ({"traffic": {"source": "kafka"}}, "traffic.source"),
    ({"traffic": {"source": "bundled", "dataset": "breast_cancer", "rows_per_day": 0}}, "traffic.rows_per_day"),
    ({"modality": "text"}, "input_column"),
    ({"features": {"x": "text"}}, "features.x"),
    ({"ranges": {"x": [5, 1]}}, "ranges.x"),
    ({"thresholds": {"alpha": 0}}, "thresholds.alpha"),
    ({"thresholds": {"correction": "bonferroni"}}, "thresholds.correction"),
    ({"thresholds": {"drift": {"numeric": "magic"}}}, "thresholds.drift.numeric"),
    ({"thresholds": {"max_missing_share": 1.5}}, "thresholds.max_missing_share"),
    ({"thresholds": {"slo": {"throughput": 3}}}, "thresholds.slo.throughput"),
    ({"thresholds": {"slo": {"accuracy": -1}}}, "thresholds.slo.accuracy"),
    ({"alerts": {"routes": ["pager"]}}, "alerts.routes"),
    ({"retraining": {"cooldown_hours": "soon"}}, "retraining.cooldown_hours"),
    ({"retraining": {"estimate_windows": -1}}, "retraining.estimate_windows"),
    ({"retraining": {"estimate_windows": 1.5}}, "retraining.estimate_windows"),
    ({"retraining": {"estimate_windows": True}}, "retraining.estimate_windows"),
    ({"speed": 3}, "speed"),
    ({"scheduled": "no"}, "scheduled"),
])
def test_an_invalid_entry_names_the_model_and_the_field(overrides, field):
    with pytest.raises(MonitorConfigError, match=f"monitor 'm': field '{field}'"):
        parse(**overrides)


def test_the_retraining_policy_takes_estimate_windows():
    from monitoring_pipeline.lib.monitors import retraining_policy

    assert retraining_policy(parse().monitors[0]).estimate_windows == 3
    assert retraining_policy(parse(retraining={"estimate_windows": 0}).monitors[0]).estimate_windows == 0


def test_file_level_problems_are_named():
    with pytest.raises(MonitorConfigError, match="non-empty 'monitors'"):
        parse_monitors({"start_date": "2026-01-01", "monitors": []})
    with pytest.raises(MonitorConfigError, match="start_date"):
        parse_monitors({"start_date": "soon", "monitors": [BASE]})
    with pytest.raises(MonitorConfigError, match="used twice"):
        parse_monitors({"start_date": "2026-01-01", "monitors": [BASE, BASE]})
    with pytest.raises(MonitorConfigError, match="name"):
        parse_monitors({"start_date": "2026-01-01", "monitors": [{**BASE, "name": "a|b"}]})
    with pytest.raises(MonitorConfigError, match="does not exist"):
        load_monitors("/nonexistent/monitors.yaml")


@pytest.mark.parametrize("model,field", [
    ({"kind": "xgboost"}, "model.kind"),
    ({"kind": "random_forest", "holdout_days": 30}, "model.holdout_days"),
    ({"kind": "random_forest", "depth": 3}, "model.depth"),
    ({}, "model"),
])
def test_a_bad_served_model_names_its_field(model, field):
    from monitoring_pipeline.lib.monitors import MonitorConfigError, parse_monitors

    raw = {"name": "m", "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"},
           "model": model}
    with pytest.raises(MonitorConfigError, match=f"monitor 'm': field '{field}'"):
        parse_monitors({"start_date": "2026-01-01", "monitors": [raw]})


def test_a_served_model_with_a_fixed_champion_is_refused():
    from monitoring_pipeline.lib.monitors import MonitorConfigError, parse_monitors

    raw = {"name": "m", "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"},
           "model": {"kind": "random_forest"}, "champion": "v1"}
    with pytest.raises(MonitorConfigError, match="field 'champion'"):
        parse_monitors({"start_date": "2026-01-01", "monitors": [raw]})
