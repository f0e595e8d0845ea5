"""Metadata a person reads in the Dagster UI, built from core's results."""

import dagster as dg

from monitoring_pipeline.core.drift import ranked_drifted
from monitoring_pipeline.core.estimation import metric_entries
from monitoring_pipeline.core.methods import FeaturePair
from monitoring_pipeline.lib.plots import drift_plot, markdown_image


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def drift_table(report: dict, limit: int = 10) -> str:
    """A Markdown table of the most drifted features, worst first."""
    rows = sorted(report["features"], key=lambda r: (-(r["drifted"]), -(r["js"] or 0.0)))[:limit]
    lines = ["| feature | method | effect | threshold | p (adjusted) | JS | severity |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['method']} | {_fmt(r['effect_size'], '.3f')} | {r['threshold']:.3f} | "
                     f"{_fmt(r['p_value_adjusted'], '.2g')} | {_fmt(r['js'], '.3f')} | {r['severity']} |")
    return "\n".join(lines)


def most_drifted_plot(report: dict, ref_profile, cur_profile) -> str | None:
    """Markdown with a PNG of the most drifted feature (or the top-scoring one), reference vs current."""
    rows = ranked_drifted(report["features"]) or sorted(
        (r for r in report["features"] if r["js"] is not None), key=lambda r: -r["js"])
    if not rows:
        return None
    name = rows[0]["name"]
    pair = FeaturePair(name, rows[0]["kind"], ref_profile.features[name], cur_profile.features[name])
    title = f"{name}: {rows[0]['method']} {rows[0]['effect_size']:.3f} ({rows[0]['severity']})"
    return markdown_image(drift_plot(pair, title), f"{name} reference vs current")


def drift_metadata(report: dict, ref_profile, cur_profile) -> dict:
    metadata = {
        "summary": dg.MetadataValue.text(report["summary"]),
        "status": dg.MetadataValue.text(report["status"]),
        "n_features": dg.MetadataValue.int(report["n_features"]),
        "n_drifted": dg.MetadataValue.int(report["n_drifted"]),
        "max_drift": dg.MetadataValue.float(float(report["max_drift"])),
        "most_drifted": dg.MetadataValue.md(drift_table(report)),
    }
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
    return out
