"""What a tabular column holds, and how its values are read.

Every column gets one kind: ``numeric`` (numbers, nullable integers), ``datetime``
(points in time, naive or time zone-aware), ``categorical`` (text, booleans, pandas
categoricals, mixed labels), or ``unsupported`` (dicts, lists, sets, bytes, arrays:
values with no distribution to compare, reported by name instead of profiled).
A column keeps the kind its reference gave it, so a window is always read the way
its reference was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .timestamps import as_timestamps, epoch_seconds

UNSUPPORTED_TYPES = (dict, list, tuple, set, frozenset, bytes, bytearray, memoryview, np.ndarray)
_PLAIN = {"string", "empty", "integer", "floating", "mixed-integer", "mixed-integer-float", "decimal",
          "boolean", "categorical", "datetime", "datetime64", "date", "time", "timedelta", "period",
          "complex", "interval"}


def unsupported_type(values: pd.Series) -> str | None:
    """The type name of the first value no kind can summarize, or None."""
    if values.dtype != object:
        return None
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in _PLAIN:
        return None
    for value in values.to_numpy(dtype=object):
        if isinstance(value, UNSUPPORTED_TYPES):
            return type(value).__name__
    return None


def dtype_family(dtype: str) -> str:
    """number, bool, time or text: a change of family is a change of schema."""
    if dtype.startswith(("int", "uint", "float", "Int", "UInt", "Float")):
        return "number"
    if dtype in ("bool", "boolean"):
        return "bool"
    if dtype.startswith("datetime"):
        return "time"
    return "text"


def column_kind(values: pd.Series, reference_kind: str | None = None) -> str:
    if unsupported_type(values) is not None:
        return "unsupported"
    if reference_kind in ("numeric", "categorical", "datetime"):
        return reference_kind
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    return "categorical"


def float_values(values: pd.Series) -> np.ndarray:
    """A numeric column as float64: NaN where missing or not a number, +-inf kept.

    Datetimes (a reference profiled before time columns had their own kind) are
    seconds since the epoch, the unit their profile holds.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return epoch_seconds(as_timestamps(values)[0])
    if values.dtype == np.float64:
        return values.to_numpy()
    if pd.api.types.is_bool_dtype(values.dtype) or (
            pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_complex_dtype(values.dtype)):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    # Text where the reference had numbers: what does not parse is counted apart.
    return pd.to_numeric(values.astype(object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
