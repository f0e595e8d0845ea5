"""The flights data's drift is real and seasonal, and two halves of one month do not drift."""

import numpy as np

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile
from monitoring_pipeline.demo import flights


def month(m):
    data = flights.flights()
    return data[data["ts"].dt.month == m]


def test_the_frame_holds_the_departed_flights_with_labels():
    data = flights.flights()
    assert len(data) == 328_521 and data["label"].isin([0, 1]).all()
    assert list(data.columns[:len(flights.FEATURES)]) == flights.FEATURES
    assert data["ts"].is_monotonic_increasing
    ref = flights.reference()
    assert ref["day"].max().month == 2 and flights.traffic_days()[0].isoformat() == "2013-03-01"


def test_january_and_july_differ_on_six_of_seven_columns():
    jan = compute_dataset_profile(month(1)[flights.FEATURES], "tabular")
    report = compare_profiles(jan, compute_dataset_profile(month(7)[flights.FEATURES], "tabular", reference=jan))
    differing = sorted(r["name"] for r in report["features"] if r["significant"])
    assert len(differing) == 6, differing


def test_two_random_halves_of_january_differ_on_none():
    jan = month(1)[flights.FEATURES]
    half = np.random.default_rng(0).random(len(jan)) < 0.5
    ref = compute_dataset_profile(jan[half], "tabular")
    report = compare_profiles(ref, compute_dataset_profile(jan[~half], "tabular", reference=ref))
    assert not any(r["significant"] for r in report["features"]) and report["n_drifted"] == 0
