"""Wall time of the README's first command's job: `dg launch --job closed_loop_job`.

    python benchmarks/closed_loop_time.py [--runs 3]

Each run is the real CLI in a fresh process (Dagster's start-up included) telling the
default story (9 days of digits, rotated 30 degrees from the fourth) against a
warehouse and a models folder in a temporary directory. The story replays from a clean
slate, so every run does the same work: 9 simulated days, 9 monitoring runs, 9 sensor
ticks and the retrainings they launch. Target: at most 3 minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DG = str(Path(sys.executable).parent / "dg")
ROOT = Path(__file__).resolve().parents[1]  # dg finds the project by its pyproject.toml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DAGSTER_HOME": tmp, "MONITORING_WAREHOUSE": str(Path(tmp) / "w.duckdb"),
               "MONITORING_MODELS": str(Path(tmp) / "models"), "MONITORING_REPORTS": str(Path(tmp) / "reports"),
               "MONITORING_METRICS": str(Path(tmp) / "metrics.prom")}
        print(f"{'run':>3} | {'seconds':>7} | {'retrainings':>11} | {'promoted':>8} | exit")
        for i in range(args.runs):
            started = time.perf_counter()
            out = subprocess.run([DG, "launch", "--job", "closed_loop_job"], cwd=ROOT, env=env, capture_output=True,
                                 text=True)
            seconds = time.perf_counter() - started
            times.append(seconds)
            retrained = out.stdout.count(": retrained v")
            promoted = out.stdout.count(", promoted (")
            print(f"{i + 1:>3} | {seconds:7.1f} | {retrained:>11} | {promoted:>8} | {out.returncode}")
            if out.returncode != 0:
                sys.exit(out.stderr[-3000:])
    print(f"median {statistics.median(times):.1f} s over {len(times)} runs (target: at most 180 s)")


if __name__ == "__main__":
    main()
