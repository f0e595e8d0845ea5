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

from .profiles import UNSUPPORTED, DatasetProfile
from .quality import (DEFAULT_RANGE_MARGIN, QualityResult, check_bounds, empty_window, freshness, missing_column,
                      not_monitored, share_findings, unparsed_times, unseen_categories, unsupported_values,
                      valid_range)


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
    return [freshness(name, summary.last, as_of)]


def _unseen(name: str, summary, reference_summary, n_rows: int) -> list[dict]:
    if reference_summary.other:
        return []
    known = reference_summary.labels()
    unseen = {label: n for label, n in summary.counts if label not in known}
    count = sum(unseen.values()) + summary.other
    if not count:
        return []
    return [unseen_categories(name, count, count / n_rows, list(unseen))]


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
    check_bounds(max_missing_share, max_infinite_share)
    if window.modality != "tabular" or reference.modality != "tabular":
        raise ValueError(f"profile_quality judges tabular profiles, got {window.modality} and {reference.modality}")
    ranges = ranges or {}
    if window.n_rows == 0:
        return QualityResult(False, 0, [empty_window()])
    findings: list[dict] = []
    for name, ref in reference.features.items():
        dtype = window.dtypes.get(name, "")
        if dtype.startswith(UNSUPPORTED):
            findings.append(unsupported_values(name, dtype[len(UNSUPPORTED):], ref.kind))
            continue
        summary = window.features.get(name)
        if summary is None:
            findings.append(missing_column(name))
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
                findings.append(unparsed_times(name, summary.n_unparsed))
            findings += _freshness(name, summary, as_of)
        else:
            findings += _unseen(name, summary, ref, summary.n_rows)
        findings += share_findings(name, summary.missing_share, infinite,
                                   summary.n_infinite if summary.kind == "numeric" else 0, max_missing_share,
                                   max_infinite_share)
    findings += not_monitored(reference)
    return QualityResult(not any(f["failed"] for f in findings), window.n_rows, findings)
