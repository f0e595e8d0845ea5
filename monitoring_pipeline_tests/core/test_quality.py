"""Data quality of a window against the reference profile: what fails and what is only reported."""

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core import compute_dataset_profile
from monitoring_pipeline.core.quality import check_window_quality

RNG = np.random.default_rng(0)
REFERENCE_FRAME = pd.DataFrame({"age": RNG.normal(40, 10, 2000), "income": RNG.lognormal(10, 1, 2000),
                                "city": RNG.choice(["paris", "lyon", "nice"], 2000)})
REFERENCE = compute_dataset_profile(REFERENCE_FRAME, "tabular")


def window(n=200, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.lognormal(10, 1, n),
                         "city": rng.choice(["paris", "lyon", "nice"], n)})


def types(result, failed=None):
    return [f["type"] for f in result.findings if failed is None or f["failed"] == failed]


def test_a_clean_window_passes_with_no_findings():
    result = check_window_quality(window(), REFERENCE)
    assert result.passed and result.findings == [] and result.n_rows == 200


def test_an_empty_window_fails():
    result = check_window_quality(window().iloc[:0], REFERENCE)
    assert not result.passed and types(result) == ["empty_window"]


def test_a_missing_column_fails_and_names_it():
    result = check_window_quality(window().drop(columns=["income"]), REFERENCE)
    assert not result.passed
    assert [(f["type"], f["feature"]) for f in result.failures] == [("missing_column", "income")]


def test_extra_columns_are_reported_without_failing_and_known_ones_are_not():
    frame = window().assign(session="s1", request_id="r")
    result = check_window_quality(frame, REFERENCE, known_columns=["request_id"])
    assert result.passed
    extra = [f for f in result.findings if f["type"] == "extra_columns"]
    assert len(extra) == 1 and extra[0]["columns"] == ["session"] and not extra[0]["failed"]


def test_strings_in_a_numeric_column_are_a_type_failure():
    frame = window()
    frame["age"] = frame["age"].astype(object)
    frame.loc[:4, "age"] = "forty"
    result = check_window_quality(frame, REFERENCE)
    wrong = [f for f in result.failures if f["type"] == "wrong_type"]
    assert wrong and wrong[0]["feature"] == "age" and wrong[0]["count"] == 5


def test_nan_and_inf_count_as_missing_against_the_bound():
    frame = window(n=100)
    frame.loc[:2, "income"] = np.nan
    frame.loc[3:4, "income"] = np.inf  # 5% missing or infinite: at the bound, not above
    assert check_window_quality(frame, REFERENCE, max_missing_share=0.05).passed
    frame.loc[5, "income"] = -np.inf
    result = check_window_quality(frame, REFERENCE, max_missing_share=0.05)
    assert [(f["type"], f["feature"]) for f in result.failures] == [("missing_values", "income")]
    assert result.failures[0]["share"] == pytest.approx(0.06)


def test_values_far_outside_the_reference_range_fail_while_drift_does_not():
    shifted = window().assign(age=lambda f: f["age"] + 15)  # drift: within the widened range
    assert check_window_quality(shifted, REFERENCE).passed
    broken = window()
    broken.loc[0, "age"] = 1e6
    result = check_window_quality(broken, REFERENCE)
    outside = [f for f in result.failures if f["type"] == "out_of_range"]
    assert outside and outside[0]["examples"] == [1e6]


def test_declared_ranges_take_precedence():
    result = check_window_quality(window(), REFERENCE, ranges={"age": [0, 45]})
    assert [f["feature"] for f in result.failures if f["type"] == "out_of_range"] == ["age"]


def test_unseen_categories_are_reported_not_failed():
    frame = window()
    frame.loc[:9, "city"] = "marseille"
    result = check_window_quality(frame, REFERENCE)
    assert result.passed
    unseen = [f for f in result.findings if f["type"] == "unseen_categories"]
    assert unseen[0]["examples"] == ["marseille"] and unseen[0]["share"] == pytest.approx(10 / 200)


def test_a_bad_bound_is_refused():
    with pytest.raises(ValueError, match="max_missing_share"):
        check_window_quality(window(), REFERENCE, max_missing_share=2)
