"""Data quality of a traffic window against the reference: the gate before any drift.

A window fails when it is empty, lacks a reference feature or has it with another
kind (text that is not numbers or times, dicts or lists), has more missing values
than allowed, any infinite value (by default), or values outside a feature's valid
range. Time columns have no range (time moves on); their freshness is reported. The valid range is the one declared for the feature, else the reference's
range widened by ``range_margin`` times its span on each side (a value that far out
is a broken pipeline, not drift). Unseen categories and columns the reference does
not have are reported without failing: the first are drift's business, the second
are ignored by the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .categorical import category_label
from .columns import dtype_family, float_values, unsupported_type
from .profiles import DatasetProfile
from .timestamps import as_timestamps, epoch_seconds

DEFAULT_RANGE_MARGIN = 1.0
_MAX = np.finfo(np.float64).max


@dataclass(frozen=True)
class QualityResult:
    passed: bool
    n_rows: int
    findings: list[dict] = field(default_factory=list)  # each: type, feature, failed, message, numbers

    @property
    def failures(self) -> list[dict]:
        return [f for f in self.findings if f["failed"]]

    def to_dict(self) -> dict:
        return asdict(self)


def valid_range(reference: DatasetProfile, name: str, declared=None, margin: float = DEFAULT_RANGE_MARGIN):
    """(low, high) allowed for a numeric feature, or None when there is nothing to go by."""
    if declared is not None:
        return float(declared[0]), float(declared[1])
    moments = reference.features[name].moments
    if moments.count == 0:
        return None
    with np.errstate(over="ignore"):  # a reference reaching +-1.8e308: the bounds are the float limits
        span = (moments.max - moments.min) or max(abs(moments.max), 1.0)
        low, high = np.clip([moments.min - margin * span, moments.max + margin * span], -_MAX, _MAX)
    return float(low), float(high)


# --- findings: one builder per type, shared with profile_quality (a frame and a profile say the same) ---

def check_bounds(max_missing_share: float, max_infinite_share: float) -> None:
    for bound, value in (("max_missing_share", max_missing_share), ("max_infinite_share", max_infinite_share)):
        if not 0 <= value <= 1:
            raise ValueError(f"{bound} must be between 0 and 1")


def empty_window() -> dict:
    return {"type": "empty_window", "feature": None, "failed": True, "message": "the window has no rows"}


def missing_column(name: str) -> dict:
    return {"type": "missing_column", "feature": name, "failed": True, "message": f"{name} is missing from the window"}


def unsupported_values(name: str, found: str, kind: str) -> dict:
    return {"type": "unsupported_type", "feature": name, "failed": True, "value_type": found,
            "message": f"{name}: holds {found} values where the reference had {kind} ones"}


def not_monitored(reference: DatasetProfile) -> list[dict]:
    """The reference's columns whose values have no distribution to compare (reported, not failed)."""
    return [{"type": "unsupported_type", "feature": name, "failed": False, "value_type": type_name,
             "message": f"{name}: {type_name} values are not monitored (no distribution to compare)"}
            for name, type_name in reference.unsupported.items()]


def unparsed_times(name: str, count: int) -> dict:
    return {"type": "wrong_type", "feature": name, "failed": True, "count": count,
            "message": f"{name}: {count} values are not times"}


def freshness(name: str, newest: float, as_of) -> dict:
    """How long before ``as_of`` a time column's newest value (epoch seconds) lies."""
    lag = float(pd.Timestamp(as_of).timestamp()) - newest
    return {"type": "freshness", "feature": name, "failed": False, "lag_hours": lag / 3600,
            "newest": pd.Timestamp(newest, unit="s", tz="UTC").isoformat(),
            "message": f"{name}: newest value {lag / 3600:.1f} h before the window's end"}


def unseen_categories(name: str, count: int, share: float, examples: list) -> dict:
    return {"type": "unseen_categories", "feature": name, "failed": False, "share": share,
            "examples": sorted(examples)[:5], "message": f"{name}: {count} values in categories the reference never had"}


def share_findings(name: str, missing: float, infinite: float, n_infinite: int, max_missing_share: float,
                   max_infinite_share: float) -> list[dict]:
    """Missing and infinite shares above their bounds."""
    found = []
    if missing > max_missing_share:
        found.append({"type": "missing_values", "feature": name, "failed": True, "share": missing,
                      "message": f"{name}: {missing:.1%} missing, above the {max_missing_share:.1%} bound"})
    if infinite > max_infinite_share:
        found.append({"type": "infinite_values", "feature": name, "failed": True, "share": infinite,
                      "count": n_infinite, "message": f"{name}: {n_infinite} infinite values ({infinite:.1%}), "
                                                      f"above the {max_infinite_share:.1%} bound"})
    return found


def _numeric_findings(name, values, reference, declared, margin) -> tuple[list[dict], np.ndarray]:
    """Findings of a numeric column, and its values as float64 in the profile's units."""
    findings = []
    numbers = float_values(values)
    unparsed = int((values.notna().to_numpy() & np.isnan(numbers)).sum())
    if unparsed:
        findings.append({"type": "wrong_type", "feature": name, "failed": True, "count": unparsed,
                         "message": f"{name}: {unparsed} values are not numbers"})
    family = dtype_family(str(values.dtype))
    if not unparsed and name in reference.dtypes and dtype_family(reference.dtypes[name]) == "number" \
            and family == "text":
        findings.append({"type": "type_changed", "feature": name, "failed": False,
                         "message": f"{name}: numbers arrive as {values.dtype} text (reference "
                                    f"{reference.dtypes[name]})"})
    bounds = valid_range(reference, name, declared, margin)
    finite = numbers[np.isfinite(numbers)]
    if bounds is not None and finite.size:
        outside = finite[(finite < bounds[0]) | (finite > bounds[1])]
        if outside.size:
            findings.append({
                "type": "out_of_range", "feature": name, "failed": True, "count": int(outside.size),
                "range": [bounds[0], bounds[1]], "examples": sorted(set(outside.tolist()))[:5],
                "message": f"{name}: {outside.size} values outside [{bounds[0]:.4g}, {bounds[1]:.4g}]"})
    return findings, numbers


def _time_findings(name, values, as_of) -> tuple[list[dict], np.ndarray]:
    """Findings of a time column (no range check: time moves on), and whether each row is missing."""
    findings = []
    stamps, unparsed = as_timestamps(values)
    if unparsed:
        findings.append(unparsed_times(name, unparsed))
    present = stamps.dropna()
    if as_of is not None and not present.empty:
        findings.append(freshness(name, float(epoch_seconds(present).max()), as_of))
    return findings, values.isna().to_numpy()


def _categorical_findings(name, values, summary) -> list[dict]:
    if summary.other:
        return []
    known = {label for label, _ in summary.counts}
    labels = values.dropna().map(category_label)
    unseen = labels[~labels.isin(known)]
    if not len(unseen):
        return []
    return [unseen_categories(name, len(unseen), len(unseen) / len(values), unseen.unique().tolist())]


def check_window_quality(
    window: pd.DataFrame,
    reference: DatasetProfile,
    *,
    max_missing_share: float = 0.05,
    max_infinite_share: float = 0.0,
    ranges: dict | None = None,
    range_margin: float = DEFAULT_RANGE_MARGIN,
    known_columns=(),
    as_of=None,
) -> QualityResult:
    """Check a tabular window's feature columns against the reference profile.

    ``known_columns`` are the window's own non-feature columns (timestamps, ids,
    predictions, labels): they are not reported as extra. Infinite values are
    counted apart from missing ones and fail above ``max_infinite_share`` (by
    default any infinite value fails). ``as_of``, the window's end, dates the
    freshness of time columns."""
    check_bounds(max_missing_share, max_infinite_share)
    ranges = ranges or {}
    findings: list[dict] = []
    if len(window) == 0:
        return QualityResult(False, 0, [empty_window()])
    columns = {str(c): c for c in window.columns}
    extra = sorted(set(columns) - set(reference.features) - set(reference.unsupported)
                   - {str(c) for c in known_columns})
    if extra:
        findings.append({"type": "extra_columns", "feature": None, "failed": False, "columns": extra,
                         "message": f"{len(extra)} columns the reference does not have: {', '.join(extra[:5])}"})
    for name, summary in reference.features.items():
        if name not in columns:
            findings.append(missing_column(name))
            continue
        values = window[columns[name]]
        found = unsupported_type(values)
        if found is not None:
            findings.append(unsupported_values(name, found, summary.kind))
            continue
        infinite = 0.0
        if summary.kind == "numeric":
            found, numbers = _numeric_findings(name, values, reference, ranges.get(name), range_margin)
            missing, infinite = float(np.mean(np.isnan(numbers))), float(np.mean(np.isinf(numbers)))
        elif summary.kind == "datetime":
            found, absent = _time_findings(name, values, as_of)
            missing = float(np.mean(absent))
        else:
            found, missing = _categorical_findings(name, values, summary), float(values.isna().mean())
        findings.extend(found)
        findings += share_findings(name, missing, infinite, int(round(infinite * len(values))), max_missing_share,
                                   max_infinite_share)
    findings += not_monitored(reference)
    return QualityResult(not any(f["failed"] for f in findings), len(window), findings)
