"""Speed and memory of a drift report, against scipy's exact per-column tests.

    python benchmarks/drift_speed.py [--sizes 10000,100000,1000000] [--repeat 3]

The reference is 1M rows x (20 numeric + 5 string categorical) columns and is
profiled once. Each current window (3 numeric columns shifted by 0.5 SD) is measured
in a fresh process: profiling the window plus compare_profiles (median of
``--repeat`` runs), the process's peak RSS during that step (the kernel's high-water
mark, reset just before it), and, as the naive peer, scipy.stats.ks_2samp on every
numeric column and chi2_contingency on every categorical one against the raw
reference. The categorical columns hold one string object per row, as they do when
read from a file, so the frame's deep size is what it really occupies.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_pipeline.core.drift import compare_profiles  # noqa: E402
from monitoring_pipeline.core.profiles import DatasetProfile, compute_dataset_profile  # noqa: E402

REFERENCE_ROWS = 1_000_000
SHIFTED = ("x0", "x7", "x14")
CARDINALITY = (5, 8, 12, 20, 50)


def make_frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(20):
        loc, scale = i * 10.0, 1.0 + i % 4
        cols[f"x{i}"] = rng.normal(loc + (shift * scale if f"x{i}" in SHIFTED else 0.0), scale, n)
    for j, k in enumerate(CARDINALITY):
        # A fixed-width numpy array becomes one Python string per row, as when logs are
        # read from CSV, Parquet or DuckDB, so pandas' deep size is the real footprint.
        labels = np.array([f"cat{j}_value_{v}" for v in range(k)])
        p = 1.0 / np.arange(1, k + 1)
        cols[f"c{j}"] = labels[rng.choice(k, size=n, p=p / p.sum())]
    return pd.DataFrame(cols)


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def naive_peer(ref: pd.DataFrame, cur: pd.DataFrame) -> None:
    from scipy import stats

    for col in ref.columns:
        if col.startswith("x"):
            stats.ks_2samp(ref[col].to_numpy(), cur[col].to_numpy())
        else:
            table = pd.concat([ref[col].value_counts(), cur[col].value_counts()], axis=1).fillna(0)
            stats.chi2_contingency(table.to_numpy().T)


def worker(n: int, profile_path: str, repeat: int) -> dict:
    reference = DatasetProfile.from_dict(json.loads(Path(profile_path).read_text()))
    current = make_frame(n, seed=2, shift=0.5)
    frame_bytes = int(current.memory_usage(deep=True).sum())
    before = _status("VmRSS")
    _reset_peak()
    times, report = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        profile = compute_dataset_profile(current, "tabular", reference=reference)
        report = compare_profiles(reference, profile)
        times.append(time.perf_counter() - started)
    peak = _status("VmHWM")
    ref_frame = make_frame(REFERENCE_ROWS, seed=1)
    started = time.perf_counter()
    naive_peer(ref_frame, current)
    naive = time.perf_counter() - started
    drifted = sorted(r["name"] for r in report["features"] if r["drifted"])
    return {"rows": n, "seconds": statistics.median(times), "peak_rss": peak, "rss_before": before,
            "frame_bytes": frame_bytes, "naive_seconds": naive, "drifted": drifted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.profile, args.repeat)))
        return

    started = time.perf_counter()
    reference = compute_dataset_profile(make_frame(REFERENCE_ROWS, seed=1), "tabular")
    print(f"reference: {REFERENCE_ROWS:,} rows x 25 columns profiled once in "
          f"{time.perf_counter() - started:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference.json"
        path.write_text(json.dumps(reference.to_dict()))
        rows = []
        for n in (int(s) for s in args.sizes.split(",")):
            out = subprocess.run([sys.executable, __file__, "--worker", str(n), "--profile", str(path),
                                  "--repeat", str(args.repeat)], check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))

    mb = 1024 * 1024
    print(f"\n{'rows':>10} | {'profile+compare s':>17} | {'rows/s':>11} | {'peak RSS MB':>11} | "
          f"{'frame MB':>8} | {'peak/frame':>10} | {'scipy exact s':>13} | {'speedup':>7}")
    for r in rows:
        print(f"{r['rows']:>10,} | {r['seconds']:>17.3f} | {r['rows'] / r['seconds']:>11,.0f} | "
              f"{r['peak_rss'] / mb:>11.0f} | {r['frame_bytes'] / mb:>8.0f} | "
              f"{r['peak_rss'] / r['frame_bytes']:>10.2f} | {r['naive_seconds']:>13.2f} | "
              f"{r['naive_seconds'] / r['seconds']:>6.1f}x")
    print("\nRSS before the step (interpreter, libraries, the window): "
          + ", ".join(f"{r['rows']:,}: {r['rss_before'] / mb:.0f} MB" for r in rows))
    print("drifted features found: " + "; ".join(f"{r['rows']:,}: {', '.join(r['drifted'])}" for r in rows)
          + f" (shifted: {', '.join(SHIFTED)})")


if __name__ == "__main__":
    main()
