"""Data quality of a window against the reference profile: what fails and what is only reported."""

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core import compute_dataset_profile
from monitoring_pipeline.core.quality import check_window_quality

from .quality_data import REFERENCE, window


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


def test_missing_values_count_against_their_bound_and_infinite_ones_apart():
    frame = window(n=100)
    frame.loc[:4, "income"] = np.nan  # 5% missing: at the bound, not above
    assert check_window_quality(frame, REFERENCE, max_missing_share=0.05).passed
    frame.loc[5, "income"] = np.nan
    result = check_window_quality(frame, REFERENCE, max_missing_share=0.05)
    assert [(f["type"], f["feature"]) for f in result.failures] == [("missing_values", "income")]
    assert result.failures[0]["share"] == pytest.approx(0.06)
    frame.loc[6:7, "income"] = [np.inf, -np.inf]  # allowed up to 2% when asked
    result = check_window_quality(frame, REFERENCE, max_missing_share=0.1, max_infinite_share=0.02)
    assert result.passed


def test_one_infinite_value_in_60_rows_fails_the_gate_and_names_the_column():
    frame = window(n=60)
    frame.loc[17, "age"] = np.inf
    result = check_window_quality(frame, REFERENCE)
    assert [(f["type"], f["feature"], f["count"]) for f in result.failures] == [("infinite_values", "age", 1)]
    assert "age" in result.failures[0]["message"]


def test_a_datetime_column_is_compared_in_its_own_units_and_dated():
    """As found: datetimes read as nanoseconds against a profile in seconds made every
    value out of range, and the gate failed on data identical to the reference."""
    rng = np.random.default_rng(3)
    stamps = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.uniform(0, 86400 * 14, 500), unit="s")
    frame = pd.DataFrame({"signup": stamps, "age": rng.normal(40, 10, 500)})
    reference = compute_dataset_profile(frame, "tabular")
    assert reference.features["signup"].kind == "datetime"
    result = check_window_quality(frame, reference, as_of=pd.Timestamp("2026-01-16"))
    assert result.passed and types(result, failed=True) == []
    fresh = [f for f in result.findings if f["type"] == "freshness"]
    assert fresh[0]["feature"] == "signup" and 24 <= fresh[0]["lag_hours"] <= 48
    later = frame.assign(signup=frame["signup"] + pd.Timedelta(days=90))  # time moved on: no range
    assert check_window_quality(later, reference).passed
    tz = frame.assign(signup=frame["signup"].dt.tz_localize("Europe/Paris"))
    assert check_window_quality(tz, compute_dataset_profile(tz, "tabular")).passed
    texts = frame.assign(signup=frame["signup"].astype(str))  # times that arrive as ISO text parse
    assert check_window_quality(texts, reference).passed
    texts.loc[:2, "signup"] = "soon"
    wrong = check_window_quality(texts, reference).failures
    assert [(f["type"], f["feature"], f["count"]) for f in wrong] == [("wrong_type", "signup", 3)]
    epochs = frame.assign(signup=range(500))  # numbers are not times: their unit would be a guess
    wrong = check_window_quality(epochs, reference).failures
    assert [(f["type"], f["feature"], f["count"]) for f in wrong] == [("wrong_type", "signup", 500)]


def test_dicts_and_lists_are_an_unsupported_type_named_by_column():
    frame = window(n=60).assign(meta=[{"k": i} for i in range(60)])
    reference = compute_dataset_profile(frame.assign(tags=[[1, 2]] * 60), "tabular")
    assert reference.unsupported == {"meta": "dict", "tags": "list"}
    assert "meta" not in reference.features
    result = check_window_quality(frame.assign(tags=[[3]] * 60), reference)
    assert result.passed  # the reference had them too: reported, not failed
    assert {f["feature"] for f in result.findings if f["type"] == "unsupported_type"} == {"meta", "tags"}
    broken = window(n=60)
    broken["city"] = [{"name": "paris"}] * 60
    result = check_window_quality(broken, REFERENCE)
    assert [(f["type"], f["feature"], f["value_type"]) for f in result.failures] == [
        ("unsupported_type", "city", "dict")]


def test_numbers_turned_to_text_are_reported_even_when_they_parse():
    frame = window(n=60)
    frame["age"] = frame["age"].map(lambda v: f"{v:.3f}")
    result = check_window_quality(frame, REFERENCE)
    assert result.passed  # the values are usable
    changed = [f for f in result.findings if f["type"] == "type_changed"]
    assert changed and changed[0]["feature"] == "age"


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
