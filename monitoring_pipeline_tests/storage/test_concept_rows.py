"""Concept drift in the warehouse: a row per feature and one per signal, with both p-values."""

import numpy as np
import pandas as pd

from monitoring_pipeline.core.concept import concept_drift
from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.results import replace_concept_drift


def test_each_signal_is_stored_with_its_raw_and_adjusted_p_value(warehouse_target):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "c": rng.normal(size=300)})
    result = concept_drift(X, (X["a"] > 0).astype(int), X, (X["b"] > 0).astype(int))
    wh = open_warehouse(warehouse_target)
    keys = dict(model_name="m", model_version="v1", baseline_period="ref", current_period="2026-03-01",
                asset_key="concept_drift_report", partition_key="2026-03-01|m", run_id=None)
    assert replace_concept_drift(wh, result, **keys) == 5
    assert replace_concept_drift(wh, result, **keys) == 5  # a re-run replaces, never duplicates
    rows = wh.read("""SELECT method, test_statistic, p_value, p_value_raw, effect_size, threshold, severity,
                             drift_detected FROM ml_drift_history
                      WHERE feature_name = '__model__' ORDER BY method""").to_dict("records")
    assert [r["method"] for r in rows] == ["importance_correlation", "performance_gap"]
    importance, performance = rows
    assert importance["test_statistic"] == result.importance_correlation
    assert importance["effect_size"] == 1 - result.importance_correlation and importance["threshold"] == 1 - 0.7
    assert (importance["p_value_raw"], importance["p_value"]) == (result.importance_p_value,
                                                                  result.importance_p_adjusted)
    assert (performance["p_value_raw"], performance["p_value"]) == (result.performance_p_value,
                                                                    result.performance_p_adjusted)
    assert performance["effect_size"] == result.performance_gap > 0.3
    assert (importance["severity"], performance["severity"]) == ("warn", "alert")
    assert importance["drift_detected"] and performance["drift_detected"]
    assert wh.read("SELECT count(*) AS n FROM ml_drift_history WHERE feature_name <> '__model__'")["n"][0] == 3
