"""Plots for the Dagster UI: PNGs embedded in Markdown as data URIs (rendered by Dagster 1.13).

Everything is drawn from profiles, so a plot never needs the raw data again.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from monitoring_pipeline.core.embedding import witness_shares  # noqa: E402
from monitoring_pipeline.core.methods import FeaturePair, decile_grid  # noqa: E402
from monitoring_pipeline.core.timestamps import time_cells  # noqa: E402


def data_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def edge_labels(edges: Sequence[float], min_digits: int = 3) -> list[str]:
    """Bin edges printed with enough significant digits to tell neighbours apart.

    Each edge gets at least ``min_digits``, and more until its rounding step is at most
    a tenth of the gap to either neighbour, so adjacent bins never read alike and every
    label is within a twentieth of a gap of its edge ("0.9991-0.9996", not "1-1").

    >>> edge_labels([0.5, 0.97, 0.99, 0.9991, 0.9996])
    ['0.5', '0.97', '0.99', '0.9991', '0.9996']
    """
    values = [float(e) for e in edges]

    def digits_for(x: float, gap: float) -> int:
        for digits in range(min_digits, 17):
            step = 10.0 ** (math.floor(math.log10(abs(x))) - digits + 1) if x else 0.0
            if step <= gap / 10:
                return digits
        return 17  # 17 significant digits tell any two doubles apart

    labels = []
    for i, x in enumerate(values):
        gaps = [abs(values[j] - x) for j in (i - 1, i + 1) if 0 <= j < len(values) and values[j] != x]
        labels.append(f"{x:.{digits_for(x, min(gaps)) if gaps else min_digits}g}")
    return labels


def feature_shares(pair: FeaturePair) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Bin labels and the reference and current share of each (reference deciles for numbers;
    for embeddings, deciles along the direction in which the mean moved most)."""
    if pair.kind == "embedding":
        edges, ref, cur = witness_shares(pair.ref, pair.cur)
        texts = edge_labels(edges)
        labels = [f"< {texts[0]}"] + [f"{a} to {b}" for a, b in zip(texts, texts[1:])] + [f">= {texts[-1]}"] \
            if texts else ["all"]
        return labels, ref, cur
    ref, cur = pair.counts
    ref, cur = ref / max(ref.sum(), 1), cur / max(cur.sum(), 1)
    if pair.kind in ("numeric", "channel"):
        grid = decile_grid(pair.numeric()[0])
        edges = edge_labels(grid)
        labels = [f"< {edges[0]}"] + [f"{a}-{b}" for a, b in zip(edges, edges[1:])] + [f">= {edges[-1]}"] \
            if edges else ["all"]
    elif pair.kind == "categorical":
        known = [label for label, _ in pair.ref.counts]
        new = [label for label, _ in pair.cur.counts if label not in set(known)]
        labels = known + new + ["other"]
    elif pair.kind == "datetime":
        if time_cells(pair.ref, pair.cur)[2] == "hour_of_week":
            labels = [f"{day} {h:02d}h" for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun") for h in range(24)]
        else:
            labels = [f"{h:02d}h" for h in pair.cur.covered_hours()]
    else:
        labels = [f"token {i}" for i in range(len(ref))]
    return labels[:len(ref)], ref, cur


def drift_plot(pair: FeaturePair, title: str, limit: int = 20) -> str:
    """A bar chart of reference vs current shares of one feature, as a PNG data URI."""
    labels, ref, cur = feature_shares(pair)
    ordered = pair.kind in ("numeric", "channel", "datetime", "embedding")
    order = np.arange(len(ref)) if ordered else np.argsort(-(ref + cur))[:limit]
    x = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(x - 0.2, ref[order], width=0.4, label="reference", color="#4c72b0")
    ax.bar(x + 0.2, cur[order], width=0.4, label="current", color="#dd8452")
    ax.set_xticks(x, [labels[i] for i in order], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share")
    if pair.kind == "embedding":
        ax.set_xlabel("position along the direction the mean moved most (bins: reference deciles)", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return data_uri(fig)


def markdown_image(uri: str, alt: str) -> str:
    return f"![{alt}]({uri})"
