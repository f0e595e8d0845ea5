"""Wall time of `dagster job execute` of monitoring_job on the embedded default.

    python benchmarks/monitoring_job_time.py [--runs 5]

Each run is the real CLI in a fresh process (Dagster's start-up included), on its own
day's window, against one warehouse in a temporary folder; the first run also builds
and stores the reference. Target: a median of at most 15 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

DAGSTER = str(Path(sys.executable).parent / "dagster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DAGSTER_HOME": tmp, "MONITORING_WAREHOUSE": str(Path(tmp) / "w.duckdb")}
        print(f"{'run':>3} | {'window':>37} | {'seconds':>7} | exit")
        for i in range(args.runs):
            day = date(2026, 1, 5) + timedelta(days=i)
            key = f"{day}|breast_cancer_classifier"
            started = time.perf_counter()
            out = subprocess.run([DAGSTER, "job", "execute", "-m", "monitoring_pipeline", "-j", "monitoring_job",
                                  "--tags", '{"dagster/partition": "%s"}' % key],
                                 cwd=tmp, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            times.append(seconds)
            print(f"{i + 1:>3} | {key:>37} | {seconds:>7.2f} | {out.returncode}")
            if out.returncode:
                print(out.stderr[-2000:])
    print(f"\nmedian {statistics.median(times):.2f} s over {len(times)} runs (target <= 15 s); "
          f"min {min(times):.2f}, max {max(times):.2f}")


if __name__ == "__main__":
    main()
