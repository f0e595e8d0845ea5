"""Data quality of a window judged from its profile, for windows never held in one frame.

A window profiled in shards (a Parquet lake) has no frame of its features to give
:func:`.quality.check_window_quality`; its merged profile holds what the gate needs. The
verdict is the same as the frame's: an empty window, a reference feature the window
lacks or holds unsupported values in, missing and infinite shares (exact: the profile
counts them), and values outside a feature's valid range (exact as a verdict: the
profile keeps each feature's least and greatest value; the number of such values is not
kept, so the finding names the extremes instead of counting them). What only a frame
shows is left out: text that does not parse as numbers is counted missing (a frame also
names it as wrong_type), and columns the reference does not have are not listed.
"""

from __future__ import annotations

import pandas as pd

from .profiles import UNSUPPORTED, DatasetProfile
from .quality import DEFAULT_RANGE_MARGIN, QualityResult, valid_range


def _range_finding(name: str, summary, reference: DatasetProfile, declared, margin: float) -> list[dict]:
    bounds = valid_range(reference, name, declared, margin)
    if bounds is None or summary.moments.count == 0:
        return []
    low, high = summary.moments.min, summary.moments.max
    outside = [v for v, out in ((low, low < bounds[0]), (high, high > bounds[1])) if out]
    if not outside:
        return []
    return [{"type": "out_of_range", "feature": name, "failed": True, "count": None,
             "range": [bounds[0], bounds[1]], "examples": outside,
             "message": f"{name}: values outside [{bounds[0]:.4g}, {bounds[1]:.4g}] "
                        f"(from {low:.4g} to {high:.4g})"}]


def _freshness(name: str, summary, as_of) -> list[dict]:
    if as_of is None or summary.last is None:
        return []
    lag = float(pd.Timestamp(as_of).timestamp()) - summary.last
    return [{"type": "freshness", "feature": name, "failed": False, "lag_hours": lag / 3600,
             "newest": pd.Timestamp(summary.last, unit="s", tz="UTC").isoformat(),
             "message": f"{name}: newest value {lag / 3600:.1f} h before the window's end"}]


def _unseen(name: str, summary, reference_summary, n_rows: int) -> list[dict]:
    if reference_summary.other:
        return []
    known = reference_summary.labels()
    unseen = {label: n for label, n in summary.counts if label not in known}
    count = sum(unseen.values()) + summary.other
    if not count:
        return []
    return [{"type": "unseen_categories", "feature": name, "failed": False, "share": count / n_rows,
             "examples": sorted(unseen)[:5],
             "message": f"{name}: {count} values in categories the reference never had"}]


def profile_quality(
    window: DatasetProfile,
    reference: DatasetProfile,
    *,
    max_missing_share: float = 0.05,
    max_infinite_share: float = 0.0,
    ranges: dict | None = None,
    range_margin: float = DEFAULT_RANGE_MARGIN,
    as_of=None,
) -> QualityResult:
    """Check a tabular window's profile against the reference profile, as
    :func:`.quality.check_window_quality` checks its frame (same options, same finding types)."""
    for bound, value in (("max_missing_share", max_missing_share), ("max_infinite_share", max_infinite_share)):
        if not 0 <= value <= 1:
            raise ValueError(f"{bound} must be between 0 and 1")
    if window.modality != "tabular" or reference.modality != "tabular":
        raise ValueError(f"profile_quality judges tabular profiles, got {window.modality} and {reference.modality}")
    ranges = ranges or {}
    if window.n_rows == 0:
        return QualityResult(False, 0, [{"type": "empty_window", "feature": None, "failed": True,
                                         "message": "the window has no rows"}])
    findings: list[dict] = []
    for name, ref in reference.features.items():
        dtype = window.dtypes.get(name, "")
        if dtype.startswith(UNSUPPORTED):
            found = dtype[len(UNSUPPORTED):]
            findings.append({"type": "unsupported_type", "feature": name, "failed": True, "value_type": found,
                             "message": f"{name}: holds {found} values where the reference had {ref.kind} ones"})
            continue
        summary = window.features.get(name)
        if summary is None:
            findings.append({"type": "missing_column", "feature": name, "failed": True,
                             "message": f"{name} is missing from the window"})
            continue
        if summary.kind != ref.kind:
            findings.append({"type": "wrong_type", "feature": name, "failed": True,
                             "message": f"{name}: {summary.kind} values where the reference had {ref.kind} ones"})
            continue
        infinite = 0.0
        if summary.kind == "numeric":
            findings += _range_finding(name, summary, reference, ranges.get(name), range_margin)
            infinite = summary.infinite_share
        elif summary.kind == "datetime":
            if summary.n_unparsed:
                findings.append({"type": "wrong_type", "feature": name, "failed": True, "count": summary.n_unparsed,
                                 "message": f"{name}: {summary.n_unparsed} values are not times"})
            findings += _freshness(name, summary, as_of)
        else:
            findings += _unseen(name, summary, ref, summary.n_rows)
        missing = summary.missing_share
        if missing > max_missing_share:
            findings.append({"type": "missing_values", "feature": name, "failed": True, "share": missing,
                             "message": f"{name}: {missing:.1%} missing, above the {max_missing_share:.1%} bound"})
        if infinite > max_infinite_share:
            count = summary.n_infinite
            findings.append({"type": "infinite_values", "feature": name, "failed": True, "share": infinite,
                             "count": count, "message": f"{name}: {count} infinite values ({infinite:.1%}), "
                                                        f"above the {max_infinite_share:.1%} bound"})
    for name, type_name in reference.unsupported.items():
        findings.append({"type": "unsupported_type", "feature": name, "failed": False, "value_type": type_name,
                         "message": f"{name}: {type_name} values are not monitored (no distribution to compare)"})
    return QualityResult(not any(f["failed"] for f in findings), window.n_rows, findings)
