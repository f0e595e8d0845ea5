"""Data quality judged on a window's merged shard profiles: the verdict of the whole frame."""

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core import compute_dataset_profile, merge_profiles
from monitoring_pipeline.core.profile_quality import profile_quality
from monitoring_pipeline.core.profiles import DatasetProfile
from monitoring_pipeline.core.quality import check_window_quality

from .quality_data import REFERENCE, window


def sharded(frame: pd.DataFrame, shards=3) -> DatasetProfile:
    """The frame profiled in ``shards`` pieces against the reference, merged."""
    bounds = np.linspace(0, len(frame), shards + 1).astype(int)
    parts = [compute_dataset_profile(frame.iloc[a:b], "tabular", reference=REFERENCE)
             for a, b in zip(bounds[:-1], bounds[1:])]
    merged = parts[0]
    for part in parts[1:]:
        merged = merge_profiles(merged, part)
    return merged


def verdict(result) -> tuple:
    return result.passed, sorted((f["type"], f["feature"], f["failed"]) for f in result.findings)


def with_nan(frame, column, rows):
    frame.loc[rows, column] = np.nan
    return frame


CASES = {
    "clean": window(),
    "missing column": window().drop(columns=["income"]),
    "missing values": with_nan(window(n=100), "income", slice(0, 5)),  # 6 of 100
    "missing at the bound": with_nan(window(n=100), "income", slice(0, 4)),  # 5 of 100: passes
    "infinite value": window(n=60).assign(age=lambda f: f["age"].where(f.index != 17, np.inf)),
    "out of range": window().assign(age=lambda f: f["age"].where(f.index != 150, 1000.0)),
    "below range": window().assign(income=lambda f: f["income"].where(f.index != 3, -5e6)),
    "unseen category": window().assign(city=lambda f: f["city"].where(f.index % 10 != 0, "rome")),
    "missing categories": window().assign(city=lambda f: f["city"].where(f.index % 4 != 0, None)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_merged_profile_gives_the_frame_s_verdict(name):
    frame = CASES[name]
    expected = check_window_quality(frame, REFERENCE)
    got = profile_quality(sharded(frame), REFERENCE)
    assert verdict(got) == verdict(expected) and got.n_rows == expected.n_rows
    shares = lambda result: {(f["type"], f["feature"]): f.get("share") for f in result.findings}  # noqa: E731
    assert shares(got) == pytest.approx(shares(expected))


def test_values_out_of_range_are_named_by_the_extremes_not_counted():
    frame = window()
    frame.loc[[10, 20], "age"] = [1000.0, 2000.0]
    frame.loc[30, "age"] = -900.0
    [finding] = profile_quality(sharded(frame), REFERENCE).failures
    assert finding["type"] == "out_of_range" and finding["count"] is None
    assert finding["examples"] == [-900.0, 2000.0]
    assert finding["range"] == list(check_window_quality(frame, REFERENCE).failures[0]["range"])


def test_infinite_values_are_counted_exactly():
    frame = window(n=300)
    frame.loc[[5, 150, 299], "income"] = [np.inf, -np.inf, np.inf]
    got = profile_quality(sharded(frame), REFERENCE, max_infinite_share=0.005)
    expected = check_window_quality(frame, REFERENCE, max_infinite_share=0.005)
    assert [(f["type"], f["count"]) for f in got.failures] == [(f["type"], f["count"]) for f in expected.failures] \
        == [("infinite_values", 3)]


def test_a_window_without_rows_fails_and_bad_bounds_are_refused():
    empty = DatasetProfile("tabular", 0, {})
    result = profile_quality(empty, REFERENCE)
    assert not result.passed and [f["type"] for f in result.findings] == ["empty_window"]
    with pytest.raises(ValueError, match="max_missing_share must be between 0 and 1"):
        profile_quality(sharded(window()), REFERENCE, max_missing_share=1.5)
    with pytest.raises(ValueError, match="tabular"):
        profile_quality(compute_dataset_profile(["a text"], "text"), REFERENCE)
