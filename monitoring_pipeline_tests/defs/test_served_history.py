"""History keyed by what served: a window split across a promotion is judged by the version
that served most of it, every served row counts, and re-materializing it after further
promotions gives the same record."""

from dataclasses import replace
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from monitoring_pipeline.definitions import build_definitions
from monitoring_pipeline.defs.partitions import register_days, window_key
from monitoring_pipeline.lib import loop
from monitoring_pipeline.lib.references import baseline_of, concept_reference, load_reference
from monitoring_pipeline.lib.sources import reference_frame
from monitoring_pipeline.storage import registry

from .conftest import config_of

MODEL = "served_breast_cancer"
DAY = "2026-03-02"


def served_monitor(**overrides):
    return config_of({
        "name": MODEL, "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"},
        "traffic": {"source": "warehouse", "rows_per_day": 60},
        "model": {"kind": "logistic_regression", "recent_days": 14, "holdout_days": 1},
        "thresholds": {"slo": {"accuracy": 0.8, "latency_p95_ms": 10_000, "error_rate": 0.05}},
        **overrides,
    }, start="2026-03-01")


def promote_new_version(wh, monitor, rows: int, seed: int) -> str:
    """A new champion trained on part of the reference (what a retraining would register)."""
    frame = reference_frame(monitor).sample(rows, random_state=seed)
    version, _ = loop.train_version(wh, monitor, frame, frame.iloc[:40], stage="champion",
                                    reason="test promotion", window="test")
    return version


def serve(wh, monitor, rows: pd.DataFrame, start: datetime, prefix: str) -> dict:
    ts = pd.Series([start + timedelta(minutes=10 * i) for i in range(len(rows))])
    return loop.serve_day(wh, monitor, rows, ts, label_delay=timedelta(0), prefix=prefix)


def record(wh) -> dict:
    """What the warehouse holds for the window, run ids left out."""
    def q(sql):
        frame = wh.read(sql, [MODEL, f"{DAY}|{MODEL}"]).round(9)
        return frame.astype(object).where(frame.notna(), None).to_dict("records")  # NaN != NaN
    return {
        "drift": q("""SELECT drift_type, feature_name, effect_size, p_value, severity, drift_detected, model_version,
                      baseline_period FROM ml_drift_history WHERE model_name = ? AND partition_key = ?
                      ORDER BY drift_type, feature_name, effect_size, p_value, severity, drift_detected,
                               model_version, baseline_period"""),
        "metrics": q("""SELECT asset_key, metric_name, metric_value, model_version, estimated
                        FROM ml_performance_metrics WHERE model_name = ? AND partition_key = ?
                        ORDER BY asset_key, metric_name, metric_value, model_version, estimated"""),
        "alerts": q("""SELECT alert_id, alert_type, severity, message, status, model_version
                       FROM ml_monitoring_alerts WHERE model_name = ? AND partition_key = ?
                       ORDER BY alert_id, alert_type, severity, message, status, model_version"""),
        "summary": q("""SELECT payload FROM artifacts WHERE model_name = ? AND partition_key = ?
                        AND name = 'monitoring_summary'"""),
    }


@pytest.fixture
def split_day(tmp_path, warehouse, monkeypatch):
    """A day served 40 requests by v1, then, after a promotion at noon, 20 by v2."""
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    config = served_monitor()
    monitor = config.monitor(MODEL)
    wh = warehouse.get()
    assert loop.ensure_champion(wh, monitor) == "v1"
    rows, _ = loop.traffic_day(monitor, 1)
    morning = serve(wh, monitor, rows.iloc[:40], datetime(2026, 3, 2, 1), "am")
    v2 = promote_new_version(wh, monitor, 200, seed=1)
    afternoon = serve(wh, monitor, rows.iloc[40:], datetime(2026, 3, 2, 13), "pm")
    assert (morning["version"], v2, afternoon["version"]) == ("v1", "v2", "v2")
    return config, wh


def run_day(config, warehouse):
    job = build_definitions(config, warehouse).resolve_job_def("monitoring_job")
    instance = dg.DagsterInstance.ephemeral()
    register_days(instance, [DAY])
    return job.execute_in_process(partition_key=window_key(DAY, MODEL), instance=instance, raise_on_error=False)


def test_a_window_split_by_a_promotion_is_judged_by_the_version_that_served_most(split_day, warehouse):
    config, wh = split_day
    result = run_day(config, warehouse)
    assert result.success, [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    meta = result.asset_materializations_for_node("traffic_window")[0].metadata
    assert meta["rows"].value == 60 and meta["served_by"].value == {"v1": 40, "v2": 20}
    assert meta["model_version"].value == "v1"
    profile = result.output_for_node("current_profile")
    assert profile["inputs"].n_rows == 60  # every served request's inputs
    assert profile["outputs"].n_rows == 40  # v1's outputs only: v2's are not comparable with v1's reference
    stored = record(wh)
    assert {r["baseline_period"] for r in stored["drift"] if r["drift_type"] == "data"} == {"reference@v1"}
    assert {r["model_version"] for r in stored["drift"] + stored["metrics"]} == {"v1"}
    n = {r["metric_name"]: r["metric_value"] for r in stored["metrics"] if r["asset_key"] == "eval_metrics"}
    served = wh.read("""SELECT l.prediction = lab.label AS hit FROM inference_log l JOIN labels lab USING (request_id)
                        WHERE l.model_name = ?""", [MODEL])
    assert n["accuracy"] == pytest.approx(served["hit"].mean())  # all 60 requests, both versions
    assert '"v2": 20' in stored["summary"][0]["payload"]


def test_rematerializing_after_more_promotions_gives_the_same_record(split_day, warehouse):
    config, wh = split_day
    run_day(config, warehouse)
    first = record(wh)
    promote_new_version(wh, config.monitor(MODEL), 250, seed=2)  # v3, then v4 become champion
    promote_new_version(wh, config.monitor(MODEL), 300, seed=3)
    assert registry.champion(wh, MODEL)["model_version"] == "v4"
    assert run_day(config, warehouse).success
    assert record(wh) == first


def reference_rows(wh, version: str) -> int:
    monitor = replace(served_monitor().monitor(MODEL), champion=version)
    return load_reference(wh, monitor).inputs.n_rows


@pytest.mark.parametrize("basis", ["validation", "training", "first_window"])
def test_the_reference_follows_the_champion_as_configured(basis, tmp_path, warehouse, monkeypatch):
    """After a promotion the new champion is judged against the labeled requests it was
    validated on (the default), its training data, or the first window it serves."""
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    config = served_monitor(reference_on_promotion=basis)
    monitor = config.monitor(MODEL)
    wh = warehouse.get()
    loop.ensure_champion(wh, monitor)
    rows, _ = loop.traffic_day(monitor, 0)
    serve(wh, monitor, rows, datetime(2026, 3, 1), "d0")
    validated = loop.labeled_traffic(wh, monitor, datetime(2026, 3, 1), datetime(2026, 3, 2), datetime(2026, 3, 3))
    training = reference_frame(monitor).sample(300, random_state=0)
    version, model = loop.train_version(wh, monitor, training, validated, stage="challenger", reason="test",
                                        window="test")
    registry.promote(wh, MODEL, version, "test")
    features = [c for c in training.columns if c != "label"]
    assert loop.adopt_reference(wh, monitor, version, model, validated, features, window="2026-03-01") == basis
    base = baseline_of(wh, MODEL, version)
    assert base["basis"] == basis
    concept_rows, concept_basis = concept_reference(wh, replace(monitor, champion=version))
    if basis == "validation":  # its inputs, and the feature-label relation of those labeled requests
        assert reference_rows(wh, version) == 60 and base["window"] == "2026-03-01"
        assert len(concept_rows) == 60 and concept_basis == "validation 2026-03-01"
        assert set(concept_rows["request_id"]) == set(validated["request_id"])
    elif basis == "training":
        assert reference_rows(wh, version) == 300
        assert concept_basis == "reference data" and len(concept_rows) == len(reference_frame(monitor))
    else:  # pending until the version serves its first window, then that window is its reference
        assert base["window"] is None and reference_rows(wh, version) == 300
        rows, _ = loop.traffic_day(monitor, 1)
        serve(wh, monitor, rows.iloc[:45], datetime(2026, 3, 2, 1), "d1")
        first = run_day(config, warehouse)
        assert first.success and baseline_of(wh, MODEL, version)["window"] == f"{DAY}|{MODEL}"
        assert reference_rows(wh, version) == 45
        assert len(concept_reference(wh, replace(monitor, champion=version))[0]) == 45
        drift = first.output_for_node("data_drift_report")
        assert drift["status"] == "ok" and drift["max_drift"] < 0.05  # the window against itself
        assert run_day(config, warehouse).success and reference_rows(wh, version) == 45  # set once


def test_reference_on_promotion_is_validated():
    from monitoring_pipeline.lib.monitors import MonitorConfigError

    with pytest.raises(MonitorConfigError, match="reference_on_promotion"):
        served_monitor(reference_on_promotion="yesterday")
    assert served_monitor().monitor(MODEL).reference_on_promotion == "validation"
