"""Dataset profiles: the unit of work that is stored, compared and merged.

A profile is a set of feature summaries (see :mod:`.numeric` and :mod:`.categorical`).
Numeric summaries are binned on quantile edges taken from a reference, so a window's
profile lines up with the reference bin for bin, and two windows' profiles merge into
the profile of their union without reading the data again.

>>> import pandas as pd
>>> ref = compute_dataset_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), "tabular")
>>> day = compute_dataset_profile(pd.DataFrame({"x": [2.0, 9.0]}), "tabular", reference=ref)
>>> day.features["x"].out_of_range, day.features["x"].moments.mean
(1, 5.5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

import numpy as np
import pandas as pd

from .categorical import CategoricalSummary, TokenSummary
from .embedding import EmbeddingSummary
from .modalities import LOADERS, SUMMARIZERS, length, take
from .numeric import ChannelSummary, FixedHistogram, NumericSummary
from .timestamps import DatetimeSummary

Modality = Literal["tabular", "text", "vision", "outputs"]
MODALITIES = ("tabular", "text", "vision", "outputs")
FORMAT_VERSION = 1

Summary = Union[NumericSummary, CategoricalSummary, TokenSummary, ChannelSummary, DatetimeSummary,
                EmbeddingSummary]
_SUMMARY_TYPES = {cls.kind: cls for cls in (NumericSummary, CategoricalSummary, TokenSummary, ChannelSummary,
                                            DatetimeSummary, EmbeddingSummary)}
UNSUPPORTED = "unsupported: "  # dtypes' prefix for a column whose values no summary can hold


@dataclass(frozen=True)
class DatasetProfile:
    """The profile of one data set or window.

    ``n_rows`` rows were examined out of ``n_rows_seen`` (fewer when sampled).
    ``histograms`` hold display-only summaries; ``dtypes`` the tabular column types
    (a column of dicts, lists or bytes is named there as "unsupported: dict" and has
    no feature summary).
    """

    modality: Modality
    n_rows: int
    features: dict[str, Summary]
    histograms: dict[str, FixedHistogram] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    n_rows_seen: int = 0

    @property
    def unsupported(self) -> dict[str, str]:
        """Columns left out because their values have no distribution: name -> type."""
        return {name: t[len(UNSUPPORTED):] for name, t in self.dtypes.items() if t.startswith(UNSUPPORTED)}

    def to_dict(self) -> dict:
        """A JSON-safe dict that :meth:`from_dict` turns back into an equal profile."""
        return {
            "format": FORMAT_VERSION,
            "modality": self.modality,
            "n_rows": self.n_rows,
            "n_rows_seen": self.n_rows_seen,
            "features": {name: s.to_dict() for name, s in self.features.items()},
            "histograms": {name: h.to_dict() for name, h in self.histograms.items()},
            "dtypes": dict(self.dtypes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> DatasetProfile:
        if d.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported profile format {d.get('format')!r}; expected {FORMAT_VERSION}")
        features = {}
        for name, fd in d["features"].items():
            if fd.get("type") not in _SUMMARY_TYPES:
                raise ValueError(f"feature {name!r} has unknown summary type {fd.get('type')!r}")
            features[name] = _SUMMARY_TYPES[fd["type"]].from_dict(fd)
        return cls(
            modality=d["modality"],
            n_rows=d["n_rows"],
            features=features,
            histograms={n: FixedHistogram.from_dict(h) for n, h in d["histograms"].items()},
            dtypes=dict(d["dtypes"]),
            n_rows_seen=d["n_rows_seen"],
        )


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}; got {modality!r}")


def compute_dataset_profile(
    data,
    modality: Modality,
    *,
    sample_size: int | None = None,
    reference: DatasetProfile | object | None = None,
    seed: int = 0,
) -> DatasetProfile:
    """Profile ``data`` of the given modality.

    Parameters
    ----------
    data
        tabular: a DataFrame. text: strings, or dicts with "input_ids" or "text".
        vision: an [N, C, H, W] array or tensor, or dicts with "pixel_values".
        outputs: predicted classes, or a dict with "predictions" and optionally
        "probabilities" / "confidences" / "task"; float predictions are regression.
    sample_size
        Examine at most this many rows, drawn uniformly without replacement.
    reference
        The reference profile (or reference data) whose bin edges and categories
        this profile uses. Without one, the data is its own reference.
    seed
        Seed of the sample.
    """
    _check_modality(modality)
    if reference is not None and not isinstance(reference, DatasetProfile):
        reference = compute_dataset_profile(reference, modality, seed=seed)
    if reference is not None and reference.modality != modality:
        raise ValueError(f"reference profile is {reference.modality}, data is {modality}")
    canonical = LOADERS[modality](data)
    n_seen = length(canonical)
    if sample_size is not None:
        if int(sample_size) != sample_size or sample_size < 1:
            raise ValueError(f"sample_size must be a positive integer, got {sample_size!r}")
        if sample_size < n_seen:
            rows = np.sort(np.random.default_rng(seed).choice(n_seen, size=int(sample_size), replace=False))
            canonical = take(canonical, rows)
    features, histograms, dtypes = SUMMARIZERS[modality](canonical, reference)
    return DatasetProfile(modality, length(canonical), features, histograms, dtypes, n_seen)


def merge_profiles(a: DatasetProfile, b: DatasetProfile) -> DatasetProfile:
    """The profile of the concatenation of the data behind ``a`` and ``b``.

    Both must be binned against the same reference. Counts, missing counts and
    moments merge exactly; percentiles and capped label counts are approximate after
    a merge (see :mod:`.numeric` and :mod:`.categorical` for the error bounds). A
    feature present on one side only counts the other side's rows as missing. A column
    typed differently on the two sides (int64 in a shard without missing values, Int64
    in one with them) gets the type pandas gives their concatenation.
    """
    if a.modality != b.modality:
        raise ValueError(f"cannot merge a {a.modality} profile with a {b.modality} profile")
    features = {}
    for name in [*a.features, *(n for n in b.features if n not in a.features)]:
        fa, fb = a.features.get(name), b.features.get(name)
        if fa is not None and fb is not None:
            if fa.kind != fb.kind:
                raise ValueError(f"feature {name!r} is {fa.kind} in one profile and {fb.kind} in the other")
            features[name] = fa.merge(fb)
        else:
            present, rows_without = (fa, b.n_rows) if fa is not None else (fb, a.n_rows)
            features[name] = present.with_missing(rows_without) if hasattr(present, "with_missing") else present
    histograms = {}
    for name in set(a.histograms) | set(b.histograms):
        ha, hb = a.histograms.get(name), b.histograms.get(name)
        histograms[name] = ha.merge(hb) if ha is not None and hb is not None else (ha or hb)
    dtypes = {name: _union_dtype(a.dtypes.get(name), b.dtypes.get(name))
              for name in [*a.dtypes, *(n for n in b.dtypes if n not in a.dtypes)]}
    return DatasetProfile(a.modality, a.n_rows + b.n_rows, features, histograms, dtypes,
                          a.n_rows_seen + b.n_rows_seen)


def _union_dtype(a: str | None, b: str | None) -> str | None:
    """The dtype of a column made of a column of dtype ``a`` and one of dtype ``b``, as
    ``pd.concat`` types it; a column unsupported on either side stays unsupported, and a
    dtypes entry that is no pandas dtype (a vision profile's image layout) keeps ``a``."""
    if a is None or b is None or a == b:
        return b if a is None else a
    if b.startswith(UNSUPPORTED) and not a.startswith(UNSUPPORTED):
        return b
    try:
        left, right = pd.api.types.pandas_dtype(a), pd.api.types.pandas_dtype(b)
    except TypeError:  # "unsupported: dict", "NCHW": not a pandas dtype
        return a
    return str(pd.concat([pd.Series(dtype=left), pd.Series(dtype=right)]).dtype)
