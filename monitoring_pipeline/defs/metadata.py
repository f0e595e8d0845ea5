"""Metadata a person reads in the Dagster UI, built from core's results."""

from __future__ import annotations


def drift_table(report: dict, limit: int = 10) -> str:
    """A Markdown table of the most drifted features, worst first."""
    rows = sorted(report["features"], key=lambda r: (-(r["drifted"]), -(r["js"] or 0.0)))[:limit]
    lines = ["| feature | method | effect | threshold | p (adjusted) | JS | severity |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        effect = "n/a" if r["effect_size"] is None else f"{r['effect_size']:.3f}"
        p = "n/a" if r["p_value_adjusted"] is None else f"{r['p_value_adjusted']:.2g}"
        js = "n/a" if r["js"] is None else f"{r['js']:.3f}"
        lines.append(f"| {r['name']} | {r['method']} | {effect} | {r['threshold']:.3f} | {p} | {js} | "
                     f"{r['severity']} |")
    return "\n".join(lines)

