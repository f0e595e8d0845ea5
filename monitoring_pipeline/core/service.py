"""Service-level numbers of a window (latency, errors) and SLO verdicts.

SLOs are bounds from the monitor's config: ``accuracy`` is a floor, ``latency_p95_ms``
and ``error_rate`` are ceilings (the seed's Phase 5 targets are the defaults).
"""

from __future__ import annotations

import numpy as np

SLO_DIRECTIONS = {"accuracy": "min", "latency_p95_ms": "max", "error_rate": "max"}


def service_metrics(latency_ms, errors) -> dict:
    """Request count, latency percentiles (of requests that report one) and error rate."""
    latency = np.asarray(latency_ms, dtype=np.float64)
    failed = np.asarray([e is not None and e == e and str(e) != "" for e in errors], dtype=bool)
    n = int(failed.size)
    known = latency[np.isfinite(latency)]
    out = {"request_count": n, "error_rate": float(failed.mean()) if n else None}
    for q in (50, 95, 99):
        out[f"latency_p{q}_ms"] = float(np.percentile(known, q)) if known.size else None
    return out


def slo_breaches(measured: dict, slo: dict) -> list[dict]:
    """One entry per SLO whose measured value is on the wrong side of its bound."""
    breaches = []
    for name, bound in slo.items():
        if name not in SLO_DIRECTIONS:
            raise ValueError(f"unknown SLO {name!r}; known: {', '.join(SLO_DIRECTIONS)}")
        value = measured.get(name)
        if value is None or bound is None:
            continue
        direction = SLO_DIRECTIONS[name]
        if (direction == "min" and value < bound) or (direction == "max" and value > bound):
            word = "below" if direction == "min" else "above"
            breaches.append({"slo": name, "value": value, "bound": bound,
                             "message": f"{name} {value:.4g} is {word} its SLO of {bound:.4g}"})
    return breaches
