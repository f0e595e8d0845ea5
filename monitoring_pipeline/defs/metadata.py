"""Metadata a person reads in the Dagster UI, built from core's results.

Every float shown is rounded to 4 significant digits (``rounded``); the warehouse keeps the
exact values. A number's key names its unit where it has one (``max_drift_js``).
"""

import numbers

import dagster as dg

from monitoring_pipeline.core.drift import describe_effects, effect_text, ranked_drifted
from monitoring_pipeline.core.estimation import metric_entries
from monitoring_pipeline.core.methods import FeaturePair
from monitoring_pipeline.core.rounding import fmt_sig, round_sig
from monitoring_pipeline.lib.plots import drift_plot, markdown_image


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def rounded(metadata: dict) -> dict:
    """``metadata`` with its floats rounded for people (4 significant digits): plain floats and
    float ``MetadataValue``s; NaN and inf are kept as what they are. Other entries (None, ints,
    text, tables) are left as they are."""
    out = {}
    for key, value in metadata.items():
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
            out[key] = dg.MetadataValue.float(round_sig(value))
        elif isinstance(value, dg.FloatMetadataValue) and value.value is not None:
            out[key] = dg.MetadataValue.float(round_sig(value.value))
        else:
            out[key] = value
    return out


def drift_table(report: dict, limit: int = 10) -> str:
    """A Markdown table of the most drifted features, worst first."""
    rows = sorted(report["features"], key=lambda r: (-(r["drifted"]), -(r["js"] or 0.0)))[:limit]
    lines = ["| feature | method | effect (method's unit) | threshold (method's unit) | p (adjusted) | "
             "JS (yardstick) | severity |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['method']} | {fmt_sig(r['effect_size'])} | {fmt_sig(r['threshold'])} | "
                     f"{_fmt(r['p_value_adjusted'], '.2g')} | {fmt_sig(r['js'])} | {r['severity']} |")
    return "\n".join(lines)


def most_drifted_plot(report: dict, ref_profile, cur_profile) -> str | None:
    """Markdown with a PNG of the most drifted feature (or the top-scoring one), reference vs current."""
    rows = ranked_drifted(report["features"]) or sorted(
        (r for r in report["features"] if r["js"] is not None), key=lambda r: -r["js"])
    if not rows:
        return None
    name = rows[0]["name"]
    pair = FeaturePair(name, rows[0]["kind"], ref_profile.features[name], cur_profile.features[name])
    title = f"{name}: {rows[0]['method']} {fmt_sig(rows[0]['effect_size'])} ({rows[0]['severity']})"
    return markdown_image(drift_plot(pair, title), f"{name} reference vs current")


def drift_metadata(report: dict, ref_profile, cur_profile, version: str | None = None) -> dict:
    """The drift report as the UI shows it. ``summary`` (core.drift's sentence) names each drifted
    feature's effect in its method's unit and its JS yardstick; ``max_drift_js`` is the largest JS distance (the
    report's ``max_drift``), ``max_drift_feature`` the feature it belongs to."""
    drifted = ranked_drifted(report["features"])
    scores = report.get("drift_scores") or {}
    top = max(scores, key=scores.get) if scores else None
    metadata = {
        "summary": dg.MetadataValue.text(report["summary"]),
        "status": dg.MetadataValue.text(report["status"]),
        "n_features": dg.MetadataValue.int(report["n_features"]),
        "n_drifted": dg.MetadataValue.int(report["n_drifted"]),
        "drift_share": dg.MetadataValue.float(round_sig(float(report["drift_share"]))),
        "max_drift_js": dg.MetadataValue.float(round_sig(float(report["max_drift"]))),
        "max_drift_feature": top or "none",
        "most_drifted": dg.MetadataValue.md(drift_table(report)),
    }
    if drifted:
        metadata["drifted_effects"] = describe_effects(drifted, limit=len(drifted))
    if version is not None:
        metadata["model_version"] = str(version)
    plot = most_drifted_plot(report, ref_profile, cur_profile)
    if plot:
        metadata["plot"] = dg.MetadataValue.md(plot)
    return metadata


def skipped_report(reason: str) -> dict:
    """A drift report for a comparison that could not run (it is "ok" and says why)."""
    return {"status": "ok", "skipped": reason, "summary": f"skipped: {reason}", "features": [],
            "drift_scores": {}, "max_drift": 0.0, "n_features": 0, "n_drifted": 0, "drift_share": 0.0,
            "schema": [], "quality": []}


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def estimated_values(estimate: dict) -> dict:
    """The estimate's metrics as plain values (the defined ones)."""
    return {k: v["estimate"] for k, v in metric_entries(estimate).items() if v["estimate"] is not None}


def estimate_line(estimate: dict) -> str:
    """'estimated accuracy 0.71 [0.64, 0.78] by pape, labels pending', and why it cannot be trusted."""
    key = "accuracy" if "accuracy" in estimate else next(iter(metric_entries(estimate)), None)
    entry = estimate.get(key) if key else None
    if not entry or entry["estimate"] is None:
        return "labels pending; no estimate"
    line = (f"estimated {key} {entry['estimate']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}] by "
            f"{entry['method']}, labels pending")
    return line if estimate["reliable"] else f"{line}; estimate unreliable: {estimate['reason']}"


def estimate_metadata(estimate: dict | None, why_not: str = "") -> dict:
    """The estimate as the UI shows it: a table of metrics with intervals, its reliability,
    the calibration chosen and the inputs' support."""
    if estimate is None:
        return {"estimate": why_not or "none"}
    rows = [{"metric": name, "estimate": _fmt(e["estimate"], ".3f"),
             "95% interval": "n/a" if e["low"] is None else f"[{e['low']:.3f}, {e['high']:.3f}]",
             "method": e["method"], "reliable": "yes" if e["reliable"] else "no", "reason": e["reason"] or ""}
            for name, e in metric_entries(estimate).items()]
    support = estimate.get("support") or {}
    out = {"estimate": dg.MetadataValue.md(markdown_table(rows, list(rows[0]))) if rows else "none",
           "estimate_reliable": bool(estimate["reliable"]),
           "estimate_reason": estimate["reason"] or "inputs within the reference's support"}
    calibration = estimate.get("calibration")
    if calibration:
        out["calibration"] = calibration["method"]
        if calibration.get("ece_before") is not None:
            out["calibration_ece_before"] = float(calibration["ece_before"])
        if calibration.get("ece_after") is not None:
            out["calibration_ece_after"] = float(calibration["ece_after"])
    if support.get("domain_auc") is not None:
        out["domain_auc"] = float(support["domain_auc"])
        out["effective_reference_rows"] = float(support["ess"])
    return rounded(out)


def gate_line(check: str, where: str, what: str, report: str | None, *, failed: bool = True) -> str:
    """A gate's verdict in one line, e.g. "no_drift_alert failed for 2026-01-04|digits_classifier:
    contrast wasserstein 2.59 (alert), brightness wasserstein 0.56 (alert); report: <path>". The
    check's description and the ERROR line a CI log shows both carry it."""
    line = f"{check} {'failed' if failed else 'warned'} for {where}: {' '.join(what.split())}"
    return f"{line}; report: {report}" if report else line


def drifted_effects_line(rows: list[dict]) -> str:
    """Drifted features as "contrast wasserstein 2.59 (alert), brightness wasserstein 0.56 (alert)",
    from rows with ``name``, ``method``, ``effect_size`` and ``severity``, most drifted first."""
    return ", ".join(f"{r['name']} {r['method']} {effect_text(r['effect_size'])} ({r['severity']})" for r in rows)
