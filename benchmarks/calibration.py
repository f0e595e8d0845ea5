"""False-alarm rate and detection power of the drift verdict, by window size.

    python benchmarks/calibration.py [--null-reps 1000] [--reps 200] [--sizes 30,100,1000,10000,100000]

Draws an i.i.d. reference (10k rows) and current windows over 25 features (15
numeric of several shapes, 10 categorical with rare categories), seeded, and counts
how often compare_profiles flags ANY feature. Then it shifts 3 numeric features by
0.5 SD (and by 0.2 SD at 10k rows) and counts how often they are caught.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_pipeline.core.drift import compare_profiles  # noqa: E402
from monitoring_pipeline.core.profiles import compute_dataset_profile  # noqa: E402

REFERENCE_ROWS = 10_000
SHIFTED = ("n0", "n3", "n6")  # a normal, a lognormal and an integer feature


def _zipf(k: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** s
    return w / w.sum()


CATEGORIES = [(2, 0.5), (3, 1.0), (4, 1.2), (5, 1.5), (8, 1.1), (10, 1.3), (15, 1.6), (20, 1.8),
              (25, 2.0), (30, 2.2)]


def draw(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """25 features; ``shift`` moves the SHIFTED features by that many standard deviations."""
    cols = {}
    for i in range(15):
        kind = i % 5
        if kind == 0:
            x = rng.normal(0.0, 1.0, n)
            sd = 1.0
        elif kind == 1:
            x = rng.exponential(2.0, n)
            sd = 2.0
        elif kind == 2:
            x = rng.uniform(-1, 1, n)
            x[rng.random(n) < 0.05] = np.nan  # 5% missing
            sd = np.sqrt(1 / 3)
        elif kind == 3:
            x = rng.lognormal(0.0, 0.5, n)
            sd = np.sqrt((np.exp(0.25) - 1) * np.exp(0.25))
        else:
            x = rng.poisson(4.0, n).astype(float)
            sd = 2.0
        name = f"n{i}"
        if name in SHIFTED:
            x = x + shift * sd
        cols[name] = x
    for j, (k, s) in enumerate(CATEGORIES):
        labels = np.array([f"c{j}_{v}" for v in range(k)], dtype=object)
        cols[f"c{j}"] = labels[rng.choice(k, size=n, p=_zipf(k, s))]
    return pd.DataFrame(cols)


def rate(reference, rng, n: int, reps: int, shift: float = 0.0, thresholds=None):
    """Share of windows with any drifted feature, and share of shifted features caught."""
    any_drift = caught = 0
    for _ in range(reps):
        window = compute_dataset_profile(draw(rng, n, shift), "tabular", reference=reference)
        report = compare_profiles(reference, window, thresholds=thresholds)
        drifted = {r["name"] for r in report["features"] if r["drifted"]}
        any_drift += bool(drifted)
        caught += len(drifted & set(SHIFTED))
    return any_drift / reps, caught / (reps * len(SHIFTED))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-reps", type=int, default=1000,
                        help="repetitions per size for the false-alarm table")
    parser.add_argument("--reps", type=int, default=200, help="repetitions per detection case")
    parser.add_argument("--sizes", default="30,100,1000,10000,100000")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(args.seed)
    reference = compute_dataset_profile(draw(rng, REFERENCE_ROWS), "tabular")
    started = time.perf_counter()

    print(f"False alarms: i.i.d. windows, 25 features, reference {REFERENCE_ROWS} rows, "
          f"{args.null_reps} repetitions per size (target <= 5%)")
    print(f"{'rows':>8} | {'windows with any drifted feature':>32} | {'95% CI':>15}")
    for n in sizes:
        share, _ = rate(reference, rng, n, args.null_reps)
        half = 1.96 * np.sqrt(max(share * (1 - share), 1e-12) / args.null_reps)
        print(f"{n:>8} | {share:>31.1%} | {max(0, share - half):>6.1%}-{share + half:.1%}")

    print(f"\nDetection: 3 of 25 features shifted, {args.reps} repetitions (target >= 95% at 1k rows or more)")
    print(f"{'rows':>8} | {'shift':>6} | {'thresholds':>12} | {'windows flagged':>15} | "
          f"{'shifted features caught':>23}")
    cases = [(n, 0.5, None) for n in sizes if n >= 1000] + [(10_000, 0.2, None)]
    cases.append((10_000, 0.2, {"numeric": 0.0}))
    for n, shift, thresholds in cases:
        flagged, caught = rate(reference, rng, n, args.reps, shift, thresholds)
        label = "default" if thresholds is None else "signif. only"
        print(f"{n:>8} | {shift:>4.1f}SD | {label:>12} | {flagged:>15.1%} | {caught:>23.1%}")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
