"""Data quality of a traffic window against the reference: the gate before any drift.

A window fails when it is empty, lacks a reference feature or has it with another
kind, has more missing values than allowed, or has values outside a feature's valid
range. The valid range is the one declared for the feature, else the reference's
range widened by ``range_margin`` times its span on each side (a value that far out
is a broken pipeline, not drift). Unseen categories and columns the reference does
not have are reported without failing: the first are drift's business, the second
are ignored by the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .profiles import DatasetProfile

DEFAULT_RANGE_MARGIN = 1.0


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
    span = (moments.max - moments.min) or max(abs(moments.max), 1.0)
    return moments.min - margin * span, moments.max + margin * span


def check_window_quality(
    window: pd.DataFrame,
    reference: DatasetProfile,
    *,
    max_missing_share: float = 0.05,
    ranges: dict | None = None,
    range_margin: float = DEFAULT_RANGE_MARGIN,
    known_columns=(),
) -> QualityResult:
    """Check a tabular window's feature columns against the reference profile.

    ``known_columns`` are the window's own non-feature columns (timestamps, ids,
    predictions, labels): they are not reported as extra."""
    if not 0 <= max_missing_share <= 1:
        raise ValueError("max_missing_share must be between 0 and 1")
    ranges = ranges or {}
    findings: list[dict] = []
    if len(window) == 0:
        findings.append({"type": "empty_window", "feature": None, "failed": True,
                         "message": "the window has no rows"})
        return QualityResult(False, 0, findings)
    columns = {str(c): c for c in window.columns}
    extra = sorted(set(columns) - set(reference.features) - {str(c) for c in known_columns})
    if extra:
        findings.append({"type": "extra_columns", "feature": None, "failed": False, "columns": extra,
                         "message": f"{len(extra)} columns the reference does not have: {', '.join(extra[:5])}"})
    for name, summary in reference.features.items():
        if name not in columns:
            findings.append({"type": "missing_column", "feature": name, "failed": True,
                             "message": f"{name} is missing from the window"})
            continue
        values = window[columns[name]]
        if summary.kind == "numeric":
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            unparsed = int((values.notna() & np.isnan(numbers)).sum())
            if unparsed:
                findings.append({"type": "wrong_type", "feature": name, "failed": True, "count": unparsed,
                                 "message": f"{name}: {unparsed} values are not numbers"})
            missing = float(np.mean(~np.isfinite(numbers)))
            bounds = valid_range(reference, name, ranges.get(name), range_margin)
            finite = numbers[np.isfinite(numbers)]
            if bounds is not None and finite.size:
                outside = finite[(finite < bounds[0]) | (finite > bounds[1])]
                if outside.size:
                    findings.append({
                        "type": "out_of_range", "feature": name, "failed": True, "count": int(outside.size),
                        "range": [bounds[0], bounds[1]], "examples": sorted(set(outside.tolist()))[:5],
                        "message": f"{name}: {outside.size} values outside [{bounds[0]:.4g}, {bounds[1]:.4g}]"})
        else:
            missing = float(values.isna().mean())
            known = {label for label, _ in summary.counts}
            if not summary.other:
                labels = values.dropna().astype(str)
                unseen = labels[~labels.isin(known)]
                if len(unseen):
                    findings.append({
                        "type": "unseen_categories", "feature": name, "failed": False,
                        "share": len(unseen) / len(values), "examples": sorted(unseen.unique().tolist())[:5],
                        "message": f"{name}: {len(unseen)} values in categories the reference never had"})
        if missing > max_missing_share:
            findings.append({"type": "missing_values", "feature": name, "failed": True, "share": missing,
                             "message": f"{name}: {missing:.1%} missing, above the {max_missing_share:.1%} bound"})
    return QualityResult(not any(f["failed"] for f in findings), len(window), findings)
