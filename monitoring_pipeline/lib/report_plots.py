"""The PNG plots of the HTML report, as data URIs, drawn from stored profiles and metrics.

Feature and output plots reuse the Dagster UI's reference-vs-current bar chart
(:func:`monitoring_pipeline.lib.plots.drift_plot`); the performance plot is the
report's own line chart of accuracy per window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from monitoring_pipeline.core import DatasetProfile  # noqa: E402
from monitoring_pipeline.core.methods import FeaturePair  # noqa: E402

from .plots import data_uri, drift_plot  # noqa: E402

MAX_FEATURE_PLOTS = 6


@dataclass(frozen=True)
class ReportPlots:
    """The report's plots as (name, data URI), drifted features most drifted first."""

    features: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    performance: str | None = None


def _pair(name: str, ref: DatasetProfile, cur: DatasetProfile) -> FeaturePair | None:
    a, b = ref.features.get(name), cur.features.get(name)
    if a is None or b is None or a.kind != b.kind:
        return None
    return FeaturePair(name, a.kind, a, b)


def feature_plots(rows: list[dict], ref: DatasetProfile, cur: DatasetProfile,
                  limit: int = MAX_FEATURE_PLOTS) -> list[tuple[str, str]]:
    """(feature, data URI) of the first ``limit`` rows whose feature both profiles hold."""
    plots = []
    for row in rows:
        pair = _pair(row["name"], ref, cur)
        if pair is None:
            continue
        title = f"{row['name']}: {row['method']} {row['effect_size']:.3f} ({row['severity']})"
        plots.append((row["name"], drift_plot(pair, title)))
        if len(plots) == limit:
            break
    return plots


def output_plots(ref: DatasetProfile, cur: DatasetProfile) -> list[tuple[str, str]]:
    """The predicted class shares and the confidence (or predicted value) histogram."""
    plots = []
    for name in ref.features:
        pair = _pair(name, ref, cur)
        if pair is not None:
            plots.append((name, drift_plot(pair, f"{name}: reference vs current")))
    return plots


def performance_plot(points: list[tuple[date, bool, float]], day: date, reference: float | None = None,
                     bounds: list[tuple[date, float, float, bool]] = ()) -> str | None:
    """Accuracy per window, measured (solid) and estimated (dashed) with each estimate's 95%
    interval (``bounds``: day, low, high, reliable); an estimate that cannot be trusted is a
    hollow marker. None without points."""
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(7, 3))
    for estimated, style, label in ((False, "o-", "measured"), (True, "s--", "estimated (labels pending)")):
        shown = sorted((d, v) for d, e, v in points if e == estimated)
        if shown:
            ax.plot([d for d, _ in shown], [v for _, v in shown], style, label=label,
                    color="#dd8452" if estimated else "#4c72b0", markersize=4)
    estimates = {d: v for d, e, v in points if e}
    for d, low, high, reliable in bounds:
        if d in estimates:
            ax.vlines(d, low, high, color="#dd8452", linewidth=1.2, alpha=0.7)
            if not reliable:
                ax.plot([d], [estimates[d]], "s", markersize=8, markerfacecolor="white", markeredgecolor="#c44e52")
    if any(not r for d, _, _, r in bounds if d in estimates):
        ax.plot([], [], "s", markerfacecolor="white", markeredgecolor="#c44e52", label="estimate unreliable")
    if reference is not None:
        ax.axhline(reference, color="#55a868", linestyle=":", label=f"reference {reference:.3f}")
    ax.axvline(day, color="#999999", linewidth=0.8)
    days = [d for d, _, _ in points] + [day]
    ax.set_xlim(min(days) - timedelta(days=1), max(days) + timedelta(days=1))
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, (max(days) - min(days)).days // 7)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy per window", fontsize=9)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return data_uri(fig)
