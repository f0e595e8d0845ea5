"""Numbers rounded for people: 4 significant digits, in sentences and in the UI's metadata.

The warehouse keeps exact values; only what a person reads is rounded, by these two
functions, so every summary and every metadata entry rounds the same way.

>>> round_sig(0.5243917), round_sig(1301.52), round_sig(None), fmt_sig(2.5901), fmt_sig(float("inf"))
(0.5244, 1302.0, None, '2.59', 'inf')
"""

from __future__ import annotations

import math
import numbers

DIGITS = 4


def round_sig(value, digits: int = DIGITS):
    """``value`` rounded to ``digits`` significant digits, as a float. None stays None; NaN and
    +-inf are returned as they are (nothing to round); bools and integers are left alone."""
    if value is None or isinstance(value, (bool, numbers.Integral)):
        return value
    if not isinstance(value, numbers.Real):
        raise ValueError(f"round_sig takes a real number or None, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value == 0.0:
        return value
    return float(f"{value:.{digits}g}")


def fmt_sig(value, digits: int = DIGITS) -> str:
    """``value`` as text with ``digits`` significant digits ("n/a" for None, "nan", "inf", "-inf")."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, numbers.Integral)):
        return str(value)
    value = round_sig(value, digits)
    if not math.isfinite(value) or value == 0.0:
        return format(value, "g")
    if not 1e-4 <= abs(value) < 1e15:
        return f"{value:.{digits}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"  # plain notation: 1302, not 1.302e+03
    return text.rstrip("0").rstrip(".") if "." in text else text
