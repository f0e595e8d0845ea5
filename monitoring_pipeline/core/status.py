"""One status from a comparison and a drift report, and the sentence that says it.

The rule is T082's: a regression fails; a drift alert warns; both together fail.
Drift at "warn" severity is named in the reasons but does not change the status. A
regression that the paired permutation test does not find significant warns
instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .drift import describe_effects, ranked_drifted

def _drifted(drift: Mapping) -> list[dict]:
    return ranked_drifted(drift.get("features", []))


def _pct(delta: float) -> str:
    return f"{delta * 100:+.1f}%"


def monitoring_status(comparison: Mapping | None, drift: Mapping | None,
                      warnings: Sequence[str] = (), failures: Sequence[str] = ()) -> tuple[str, list[str]]:
    """("ok" | "warn" | "fail", reasons). Either input may be None (not run).

    ``warnings`` are further findings (an SLO breach, concept drift) that make an
    otherwise clean window "warn" without failing it; ``failures`` (data that fails its
    quality checks) fail it, and come first among the reasons.
    """
    status, reasons = ("fail", list(failures)) if failures else ("ok", [])
    if comparison is not None:
        confirmed = comparison.get("confirmed", True)
        for name in comparison.get("regressed", []):
            row = comparison["metrics"][name]
            if not row.get("gates", True):
                continue
            caveat = "" if confirmed else ", within noise (not significant)"
            reasons.append(f"{name} regressed by {_pct(row['delta'])} "
                           f"({row['baseline']:.3f} -> {row['candidate']:.3f}{caveat})")
        if comparison.get("status") == "regressed":
            status = "fail" if confirmed or status == "fail" else "warn"
    if drift is not None:
        drifted = _drifted(drift)
        if drift.get("status") == "alert":
            reasons.append(f"drift alert on {len(drifted)} of {drift.get('n_features', 0)} features: "
                           f"{describe_effects(drifted)}")
            status = "fail" if status == "fail" else "warn"
        elif drift.get("status") == "warn":
            reasons.append(f"moderate drift on {len(drifted)} features: {describe_effects(drifted)}")
    if warnings:
        reasons.extend(warnings)
        status = "fail" if status == "fail" else "warn"
    return status, reasons


def summarize(
    eval_metrics: Mapping | None = None,
    comparison: Mapping | None = None,
    drift: Mapping | None = None,
) -> str:
    """The one-line summary, e.g. "Candidate improved accuracy by +3.0%, no severe drift detected"."""
    parts = []
    if comparison is not None:
        metric, delta = comparison["metric"], comparison["delta"]
        row = comparison["metrics"][metric]
        verb = {"improved": "improved", "regressed": "regressed", "unchanged": "left"}[row["status"]]
        if row["status"] == "unchanged":
            parts.append(f"Candidate left {metric} unchanged ({_pct(delta)})")
        else:
            parts.append(f"Candidate {verb} {metric} by {_pct(delta)}")
        others = [n for n in comparison.get("regressed", [])
                  if n != metric and comparison["metrics"][n].get("gates", True)]
        if others:
            caveat = "" if comparison.get("confirmed", True) else " (not significant)"
            parts.append(f"{', '.join(others)} regressed{caveat}")
    elif eval_metrics is not None:
        shown = [f"{k} {eval_metrics[k]:.3f}" for k in ("accuracy", "f1_macro", "roc_auc", "rmse", "mae")
                 if isinstance(eval_metrics.get(k), (int, float))]
        parts.append(("Model " + ", ".join(shown[:2])) if shown else "Model evaluated")
    if drift is not None:
        drifted = _drifted(drift)
        if drift.get("status") == "alert":
            parts.append(f"severe drift on {len(drifted)} features ({describe_effects(drifted)})")
        elif drift.get("status") == "warn":
            parts.append(f"moderate drift on {len(drifted)} features ({describe_effects(drifted)})")
        else:
            parts.append("no severe drift detected")
    if not parts:
        return "Nothing was evaluated"
    sentence = ", ".join(parts)
    return sentence[0].upper() + sentence[1:]
