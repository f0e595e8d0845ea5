"""Root-cause diagnosis: each category built from real profiles of synthetic data."""

import re

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.core.diagnosis import WindowFindings, diagnose

N = 4000


def flights(dep_shift=0.0, dist_shift=0.0, missing=0.0, new_carrier=0.0, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "dep_time": rng.normal(1301 + dep_shift, 300, N),
        "distance": rng.normal(1000 + dist_shift, 400, N),
        "air_time": rng.normal(150, 60, N),
        "carrier": rng.choice(["UA", "AA", "DL", "B6"], N),
    })
    if missing:
        frame.loc[rng.random(N) < missing, "air_time"] = np.nan
    if new_carrier:
        frame.loc[rng.random(N) < new_carrier, "carrier"] = "ZZ"
    return frame


def inputs(**current):
    ref = compute_dataset_profile(flights(), "tabular")
    return compare_profiles(ref, compute_dataset_profile(flights(seed=1, **current), "tabular", reference=ref))


def outputs(shift):
    rng = np.random.default_rng(3)
    ref = compute_dataset_profile({"predictions": rng.choice(["0", "1"], N, p=[0.8, 0.2]),
                                   "confidences": rng.uniform(0.5, 1, N)}, "outputs")
    p = min(0.2 + shift, 0.9)
    cur = compute_dataset_profile({"predictions": rng.choice(["0", "1"], N, p=[1 - p, p]),
                                   "confidences": rng.uniform(0.5, 1, N)}, "outputs", reference=ref)
    return compare_profiles(ref, cur)


def test_a_shifted_feature_is_a_data_issue_with_its_numbers_first():
    d = diagnose(WindowFindings(input_drift=inputs(dep_shift=243, dist_shift=60), accuracy=0.7,
                                baseline_accuracy=0.8))
    assert d.category == "data" and d.action == "retrain"
    assert d.features[0]["feature"] == "dep_time"  # the bigger shift leads
    found = re.fullmatch(r"Feature dep_time mean shifted from (\d+) to (\d+) \(\+(\d+\.\d)%\)", d.evidence[0])
    ref, cur, pct = float(found[1]), float(found[2]), float(found[3])
    assert abs(ref - 1301) < 20 and abs(cur - 1544) < 20 and abs(pct - 100 * (cur - ref) / ref) < 0.1
    assert abs(sum(f["contribution"] for f in d.features) - 1.0) < 1e-9
    assert "led by dep_time" in d.hypothesis and "accuracy fell" in d.hypothesis
    assert any(e.startswith("Accuracy 0.700 vs 0.800") for e in d.evidence)


def test_new_categories_are_named_and_rising_missing_values_are_a_data_issue():
    d = diagnose(WindowFindings(input_drift=inputs(new_carrier=0.2)))
    assert d.category == "data"
    assert any("carrier" in e and "unseen" in e and "ZZ" in e for e in d.evidence)
    missing = diagnose(WindowFindings(input_drift=inputs(missing=0.3)))
    assert missing.category == "data"
    assert any(e.startswith("Feature air_time missing in 3") for e in missing.evidence)


def test_a_new_version_with_a_drop_and_stable_inputs_is_a_model_issue_to_roll_back():
    d = diagnose(WindowFindings(input_drift=inputs(), accuracy=0.62, baseline_accuracy=0.81, version="v2",
                                previous_version="v1"))
    assert inputs()["status"] == "ok"
    assert (d.category, d.action) == ("model", "rollback")
    assert "v2 replaced v1" in d.hypothesis and "Accuracy 0.620 vs 0.810 expected (-0.190)" in d.evidence


def test_a_drop_without_input_drift_or_version_change_is_concept_drift_to_retrain():
    concept = {"drifted": True, "reasons": ["importance of dep_time rose from 0.10 to 0.45"]}
    d = diagnose(WindowFindings(input_drift=inputs(), concept=concept, accuracy=0.6, baseline_accuracy=0.8,
                                version="v1", previous_version="v1"))
    assert (d.category, d.action) == ("model", "retrain") and "concept drift" in d.hypothesis
    assert "Concept drift: importance of dep_time rose from 0.10 to 0.45" in d.evidence


@pytest.mark.parametrize("previous,action", [("v1", "investigate_model"), ("v0", "rollback")])
def test_output_drift_without_input_drift_is_a_model_issue(previous, action):
    d = diagnose(WindowFindings(input_drift=inputs(), output_drift=outputs(0.3), version="v1",
                                previous_version=previous))
    assert d.category == "model" and d.action == action
    assert any(e.startswith("Output predicted_class: jensenshannon") for e in d.evidence)


def test_slow_or_failing_service_with_stable_inputs_is_infrastructure():
    d = diagnose(WindowFindings(input_drift=inputs(), latency_p95_ms=240.0, baseline_latency_p95_ms=80.0,
                                error_rate=0.075, baseline_error_rate=0.005))
    assert (d.category, d.action) == ("infrastructure", "investigate_infrastructure")
    assert d.evidence == ("Latency p95 240 ms vs 80 ms before (x3.0)", "Error rate 7.5% vs 0.5% before")


def test_nothing_abnormal_is_said_plainly():
    d = diagnose(WindowFindings(input_drift=inputs(), accuracy=0.8, baseline_accuracy=0.81,
                                latency_p95_ms=90.0, baseline_latency_p95_ms=80.0))
    assert (d.category, d.action, d.evidence) == ("none", "none", ())
    assert d.to_dict()["evidence"] == []


def test_a_topic_shift_is_explained_by_the_tokens_that_moved():
    from monitoring_pipeline.core.diagnosis import feature_evidence
    from monitoring_pipeline_tests.core.text_data import topic_shift

    ref, cur = topic_shift(1000, 300, seed=0)
    reference = compute_dataset_profile(ref, "text")
    report = compare_profiles(reference, compute_dataset_profile(cur, "text", reference=reference))
    tokens = {r["name"]: r for r in report["features"]}["tokens"]
    assert tokens["drifted"]
    sentence = feature_evidence(tokens)
    assert "% of documents" in sentence and "->" in sentence
