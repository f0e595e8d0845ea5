"""Summaries of points in time: when in the day and week they fall, and how fresh they are.

Absolute timestamps always move forward, so comparing their values (or their range)
between a reference and a later window would flag every window as drifted or out of
range. A time column is summarized instead by its hour-of-day and hour-of-week
profile, which can be compared, and by its oldest and newest value, which give the
window's freshness. Hours are wall-clock hours: a time zone-aware column uses its
own zone, a naive one is taken as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import ClassVar

import numpy as np
import pandas as pd

HOURS_PER_WEEK = 168
FULL_DAY_S = 23 * 3600  # a window spanning this much covers every hour of the day
FULL_WEEK_S = 6 * 86400 + FULL_DAY_S


def as_timestamps(values: pd.Series) -> tuple[pd.Series, int]:
    """``values`` as datetimes, and how many present values are not times at all.

    Text (ISO 8601 and the like, as a JSON log stores times) is parsed, as UTC when it
    names no zone. Numbers are not times: their unit (seconds? nanoseconds?) would be a
    guess, so they count as values that are not times.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values, 0
    objects = values.astype(object)
    textual = objects.map(lambda v: isinstance(v, (str, date, pd.Timestamp)), na_action="ignore")
    candidates = objects.where(textual.fillna(False).astype(bool), None)
    parsed = pd.to_datetime(candidates, errors="coerce", utc=True, format="mixed")
    return parsed, int((values.notna() & parsed.isna()).sum())


def epoch_seconds(stamps: pd.Series) -> np.ndarray:
    """Seconds since 1970-01-01 UTC (naive times taken as UTC); NaN where missing."""
    if getattr(stamps.dtype, "tz", None) is None:
        stamps = stamps.dt.tz_localize("UTC")
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()


@dataclass(frozen=True)
class DatetimeSummary:
    """Counts per hour of the week (Monday 00h first), missing rows, first and last time.

    ``first`` and ``last`` are seconds since the epoch (UTC); ``first_hour`` and
    ``last_hour`` are their wall-clock hours of the week. ``n_unparsed`` counts
    present values that are not times (text that does not parse).
    """

    week_hours: tuple[int, ...]
    n_missing: int
    first: float | None
    last: float | None
    first_hour: int | None
    last_hour: int | None
    tz: str | None = None
    n_unparsed: int = 0
    kind: ClassVar[str] = "datetime"

    @classmethod
    def from_series(cls, values: pd.Series) -> DatetimeSummary:
        stamps, unparsed = as_timestamps(values)
        present = stamps.dropna()
        tz = getattr(stamps.dtype, "tz", None)
        if present.empty:
            return cls((0,) * HOURS_PER_WEEK, len(values) - unparsed, None, None, None, None,
                       None if tz is None else str(tz), unparsed)
        hour_of_week = (present.dt.day_of_week * 24 + present.dt.hour).to_numpy(dtype=np.int64)
        counts = np.bincount(hour_of_week, minlength=HOURS_PER_WEEK)
        seconds = epoch_seconds(present)
        i_first, i_last = int(np.argmin(seconds)), int(np.argmax(seconds))
        return cls(tuple(counts.tolist()), len(values) - len(present) - unparsed,
                   float(seconds[i_first]), float(seconds[i_last]),
                   int(hour_of_week[i_first]), int(hour_of_week[i_last]),
                   None if tz is None else str(tz), unparsed)

    @property
    def n_valid(self) -> int:
        return sum(self.week_hours)

    @property
    def n_rows(self) -> int:
        return self.n_valid + self.n_missing + self.n_unparsed

    @property
    def missing_share(self) -> float:
        return self.n_missing / self.n_rows if self.n_rows else 0.0

    @property
    def span_s(self) -> float:
        return 0.0 if self.first is None else self.last - self.first

    def day_hours(self) -> np.ndarray:
        return np.asarray(self.week_hours).reshape(7, 24).sum(axis=0)

    def covered_hours(self) -> np.ndarray:
        """Hours of the day from the first value's to the last value's (all 24 for a full day)."""
        if self.first is None or self.span_s >= FULL_DAY_S:
            return np.arange(24)
        start, stop = self.first_hour % 24, self.last_hour % 24
        return np.arange(start, start + (stop - start) % 24 + 1) % 24

    def freshness_lag_s(self, as_of: float) -> float | None:
        """Seconds from the newest value to ``as_of`` (seconds since the epoch)."""
        return None if self.last is None else as_of - self.last

    def merge(self, other: DatetimeSummary) -> DatetimeSummary:
        first = min((s for s in (self, other) if s.first is not None), key=lambda s: s.first, default=self)
        last = max((s for s in (self, other) if s.last is not None), key=lambda s: s.last, default=self)
        return DatetimeSummary(tuple(a + b for a, b in zip(self.week_hours, other.week_hours)),
                               self.n_missing + other.n_missing, first.first, last.last,
                               first.first_hour, last.last_hour, self.tz or other.tz,
                               self.n_unparsed + other.n_unparsed)

    def with_missing(self, n: int) -> DatetimeSummary:
        return replace(self, n_missing=self.n_missing + n)

    def describe(self) -> dict:
        return {"first": _iso(self.first), "last": _iso(self.last), "span_hours": self.span_s / 3600}

    def to_dict(self) -> dict:
        return {"type": self.kind, "week_hours": list(self.week_hours), "n_missing": self.n_missing,
                "first": self.first, "last": self.last, "first_hour": self.first_hour,
                "last_hour": self.last_hour, "tz": self.tz, "n_unparsed": self.n_unparsed}

    @classmethod
    def from_dict(cls, d: dict) -> DatetimeSummary:
        return cls(tuple(d["week_hours"]), d["n_missing"], d["first"], d["last"], d["first_hour"],
                   d["last_hour"], d["tz"], d["n_unparsed"])


def time_cells(ref: DatetimeSummary, cur: DatetimeSummary) -> tuple[np.ndarray, np.ndarray, str]:
    """Reference and current counts over the cells the current window can be compared on.

    A window spanning a week is compared hour of the week; one spanning a day, hour
    of the day; a shorter one (an intraday run), over the hours of the day it
    covers, so the hours still to come are not read as a shift.
    """
    if cur.span_s >= FULL_WEEK_S:
        return np.asarray(ref.week_hours, float), np.asarray(cur.week_hours, float), "hour_of_week"
    hours = cur.covered_hours()
    cells = "hour_of_day" if hours.size == 24 else f"hours {hours[0]:02d}-{hours[-1]:02d}"
    return ref.day_hours()[hours].astype(float), cur.day_hours()[hours].astype(float), cells
