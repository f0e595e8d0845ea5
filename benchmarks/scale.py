"""Scale: a window's profile from hourly Parquet shards, with 1 and 2 worker processes, against pandas.

    python benchmarks/scale.py [--sizes 1M,10M,30M] [--workers 1,2] [--repeats 3] [--dir /tmp] [--no-pandas]

For each size a window of that many rows (one day of one model) is written by DuckDB SQL as a
hive-partitioned lake (model=/day=/hour=, 24 hourly shards): 25 feature columns (20 numeric, 5
categorical text columns; 6 of them drifted against the reference: 3 shifted, 2 scaled, 1 skewed)
plus ts, prediction and confidence. It is profiled against a stored reference (200,000 undrifted
rows) and compared (compare_profiles of inputs and outputs): sharded (lib.lake.profile_window) with
each --workers count, and the unsharded way, the whole window read into one pandas DataFrame and
profiled at once, where that fits in half the available memory. Every run is a fresh process;
its seconds are profile + compare, worker start-up included, with the CPU seconds of its process
and workers beside (the work done, whatever else the machine runs). Memory: the run's process
and its workers are sampled every 20 ms with psutil; the table shows the peak of their summed RSS (a
forked worker's pages shared with its parent count twice: an upper bound); the largest
single process's ru_maxrss is printed as each run ends. Lakes are written in a temporary
directory (free disk checked first) and removed after. Targets: 10M rows in at most 10 s with 2
workers, peak RSS at most 2 GB at any size, speed-up at least 1.7x from 1 to 2 workers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psutil

SIZES = {"1M": 1_000_000, "10M": 10_000_000, "30M": 30_000_000}
NUMERIC, CATEGORICAL = 20, 5
DAY = date(2026, 3, 2)
MODEL = "scale"
REFERENCE_ROWS = 200_000
BYTES_PER_ROW = 200  # on disk: 20 random doubles do not compress; the labels are dictionary-encoded
FRAME_BYTES_PER_ROW = 900  # pandas: measured 8.84 GB for the 10M window (text columns as Python strings)
GB = 1024 ** 3


def features() -> dict[str, str]:
    return {**{f"num_{k:02d}": "numeric" for k in range(NUMERIC)},
            **{f"cat_{k}": "categorical" for k in range(CATEGORICAL)}}


def traffic_sql(n: int, *, drift: bool, seed: int) -> str:
    """``n`` rows of one day: uniform draws from hashes of the row number (parallel, reproducible),
    normal ones by Box-Muller. Drifted: num_00-02 shifted by 0.5 sd, num_03-04 scaled 1.5x, cat_0
    skewed towards its first labels; num_19 is 1 % missing."""
    def u(k: int) -> str:
        return f"((hash(i + {seed}, {k}) % 1000003) + 0.5) / 1000003.0"

    def normal(k: int) -> str:
        return f"sqrt(-2 * ln({u(2 * k)})) * cos(2 * pi() * {u(2 * k + 1)})"

    cols = []
    for k in range(NUMERIC):
        shift, scale = (0.5 if drift and k < 3 else 0.0), (1.5 if drift and k in (3, 4) else 1.0)
        value = f"{normal(k)} * {scale} + {shift} + {k}"
        cols.append(f"CASE WHEN {u(900)} < 0.01 THEN NULL ELSE {value} END AS num_{k:02d}" if k == NUMERIC - 1
                    else f"{value} AS num_{k:02d}")
    for k in range(CATEGORICAL):
        draw = f"power({u(100 + k)}, 2)" if drift and k == 0 else u(100 + k)
        cols.append(f"'label_' || CAST(floor({draw} * 12) AS INTEGER) AS cat_{k}")
    score = f"(({normal(0)}) + ({normal(1)}))"
    start = f"TIMESTAMP '{DAY.isoformat()} 00:00:00'"
    return (f"SELECT '{MODEL}' AS model, '{DAY.isoformat()}' AS day, CAST(i * 24 // {n} AS INTEGER) AS hour, "
            f"{start} + to_microseconds(CAST(i * 86400000000 // {n} AS BIGINT)) AS ts, "
            f"CASE WHEN {score} > 0 THEN '1' ELSE '0' END AS prediction, 0.5 + 0.5 * abs(tanh({score})) AS confidence, "
            f"{', '.join(cols)} FROM range({n}) t(i)")


def write_lake(root: Path, n: int) -> None:
    """The window as hourly shards under ``root`` (DuckDB's COPY ... PARTITION_BY, 4 GB at most)."""
    import duckdb

    conn = duckdb.connect(config={"memory_limit": "4GB"})
    conn.execute(f"COPY ({traffic_sql(n, drift=True, seed=0)}) TO '{root}' "
                 "(FORMAT parquet, PARTITION_BY (model, day, hour))")
    conn.close()


def in_child(*args: str) -> str:
    """This script run with ``args`` in a process of its own (the table's process stays small: a
    child's ru_maxrss starts from its parent's size at the fork); its last line of output."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1] if out.strip() else ""


def write_reference(path: Path) -> None:
    """The reference profiles (inputs and outputs) of undrifted rows, pickled for the runs."""
    import duckdb

    from monitoring_pipeline.core import compute_dataset_profile
    from monitoring_pipeline.lib.references import Reference, profile_inputs
    from monitoring_pipeline.lib.sources import outputs_of

    frame = duckdb.connect().execute(traffic_sql(REFERENCE_ROWS, drift=False, seed=10**12)).df()
    monitor = lake_monitor(path.parent)  # only its features' kinds are read here
    inputs = profile_inputs(monitor, frame, list(features()))
    outputs = compute_dataset_profile(outputs_of(frame["prediction"], frame["confidence"]), "outputs")
    path.write_bytes(pickle.dumps(Reference(inputs, outputs, {}, "v1")))


def lake_monitor(lake: Path):
    from monitoring_pipeline.lib.monitors import Monitor, Source

    return Monitor(name=MODEL, modality="tabular", reference=Source("bundled", dataset="breast_cancer"),
                   traffic=Source("parquet", path=str(lake)), features=features())


# --- one measured run, in a process of its own ---------------------------------------------------------


def run(mode: str, workers: int, lake: Path, reference_path: Path) -> dict:
    """Profile and compare the window once (``sharded`` or ``pandas``); what it took and found."""
    import duckdb

    from monitoring_pipeline.core import compare_profiles
    from monitoring_pipeline.lib import lake as lakes
    from monitoring_pipeline.lib.lake_files import scan
    from monitoring_pipeline.lib.references import window_profiles
    from monitoring_pipeline.lib.sources import Window

    from monitoring_pipeline.core.embedding import one_thread

    reference = pickle.loads(reference_path.read_bytes())
    monitor, names = lake_monitor(lake), list(features())
    window = Window(DAY, MODEL, f"{DAY.isoformat()}|{MODEL}")
    started, cpu_before = time.perf_counter(), cpu_seconds()
    if mode == "sharded":
        profiled = lakes.profile_window(monitor, window, reference, names, workers=workers)
        inputs, outputs, rows, shards = profiled.inputs, profiled.outputs, profiled.rows, len(profiled.shards)
    else:
        shards = lakes.window_shards(monitor, window)
        files = sorted(f for s in shards for f in s.files)
        conn = duckdb.connect()
        frame = conn.execute(f"SELECT ts, prediction, confidence, NULL AS model_version, {', '.join(names)} "
                             f"FROM {scan(files, True)}").df()
        conn.close()
        with one_thread():  # as the shards are profiled: OpenBLAS threads spin on a busy machine
            inputs, outputs = window_profiles(None, monitor, frame, names, reference)
        rows, shards = len(frame), 1
        del frame
    reports = [compare_profiles(reference.inputs, inputs), compare_profiles(reference.outputs, outputs)]
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
    return {"seconds": seconds, "cpu": cpu, "rows": rows, "shards": shards,
            "maxrss_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "maxrss_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
            "verdicts": {r["name"]: r["severity"] for report in reports for r in report["features"]},
            "p_values": {r["name"]: r["p_value"] for report in reports for r in report["features"]},
            "status": [report["status"] for report in reports]}


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that ended (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measured(mode: str, workers: int, lake: Path, reference_path: Path) -> dict:
    """:func:`run` in a fresh process, its tree's memory sampled every 20 ms: the peak of the summed
    RSS (pages a forked worker shares with its parent counted in both: an upper bound).

    Only RSS is sampled (``/proc/<pid>/statm``, microseconds). PSS is not: reading ``smaps`` walks
    the process's page tables under its memory-map lock, and sampling it every 20 to 100 ms made the
    2-worker runs of 10M rows 12-15 % slower (6.0 s unsampled, 6.7-6.9 s sampled), the 1-worker ones
    not: a speed-up measured under it is the sampler's, not the code's. The list of processes is
    refreshed every 10 samples (finding them reads every process's ``stat``)."""
    child = psutil.Popen([sys.executable, __file__, "--run", mode, "--workers", str(workers), "--lake", str(lake),
                          "--reference", str(reference_path)], stdout=subprocess.PIPE, text=True)
    peak_rss, sample, tree = 0, 0, [child]
    while child.poll() is None:
        if sample % 10 == 0:
            try:
                tree = [child, *child.children(recursive=True)]
            except psutil.NoSuchProcess:  # the run ended meanwhile
                break
        rss = 0
        for p in tree:
            try:
                rss += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess):  # a worker that ended meanwhile
                continue
        peak_rss, sample = max(peak_rss, rss), sample + 1
        time.sleep(0.02)
    out = child.stdout.read()
    if child.wait():
        raise RuntimeError(f"{mode} run with {workers} worker(s) failed ({child.returncode})")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss": peak_rss}


# --- the table --------------------------------------------------------------------------------------


def gb(n: float) -> str:
    return f"{n / GB:.2f} GB"


def cell(runs: list[dict]) -> str:
    """Median seconds (the range over repeats), median CPU seconds and the cores they kept busy,
    and the largest peak of summed RSS."""
    seconds, cpu = [r["seconds"] for r in runs], [r["cpu"] for r in runs]
    spread = f" ({min(seconds):.1f}-{max(seconds):.1f})" if len(runs) > 1 else ""
    return (f"{statistics.median(seconds):.1f} s{spread}, CPU {statistics.median(cpu):.1f} s "
            f"({statistics.median(cpu) / statistics.median(seconds):.2f} cores), "
            f"{gb(max(r['peak_rss'] for r in runs))}")


def agree(a: dict, b: dict) -> bool:
    """Whether two runs found the same verdicts, with p-values equal within float tolerance."""
    return a["verdicts"] == b["verdicts"] and all(
        (x is None and b["p_values"][k] is None) or math.isclose(x, b["p_values"][k], rel_tol=1e-9, abs_tol=1e-12)
        for k, x in a["p_values"].items())


def measure_size(size: str, base: Path, reference_path: Path, worker_counts: list[int], pandas: bool,
                 repeats: int) -> list[str]:
    """One line of the table: the window written, profiled sharded with each worker count
    (``repeats`` times) and once whole with pandas (where it fits), and removed."""
    n = SIZES[size]
    free, need_disk = shutil.disk_usage(base).free, 2 * n * BYTES_PER_ROW
    if free < need_disk:
        return [size, f"skipped: {gb(free)} free on disk, {gb(need_disk)} needed"]
    lake = base / f"lake-{size}"
    try:
        started = time.perf_counter()
        in_child("--lake", str(lake), "--rows", str(n))
        written = list(lake.rglob("*.parquet"))
        size_bytes = sum(f.stat().st_size for f in written)
        print(f"{size}: {len(written)} files, {gb(size_bytes)} written in {time.perf_counter() - started:.1f} s",
              flush=True)
        results: dict[int, list[dict]] = {w: [] for w in worker_counts}
        for _ in range(repeats):  # alternated, so a busy minute of the machine hits every count alike
            for w in worker_counts:
                load = os.getloadavg()[0]
                run_ = measured("sharded", w, lake, reference_path)
                results[w].append(run_)
                print(f"  sharded, {w} worker(s): {cell([run_])}; largest process (ru_maxrss) "
                      f"{gb(max(run_['maxrss_self'], run_['maxrss_children']))}; load before {load:.1f}", flush=True)
        first = results[worker_counts[0]][0]
        last = results[worker_counts[-1]][0]
        medians = {w: statistics.median(r["seconds"] for r in runs) for w, runs in results.items()}
        line = [size, f"{len(written)} / {gb(size_bytes)}", *[cell(runs) for runs in results.values()],
                f"{medians[worker_counts[0]] / medians[worker_counts[-1]]:.2f}x" if len(results) > 1 else "-"]
        need, available = n * FRAME_BYTES_PER_ROW, psutil.virtual_memory().available
        same = "yes" if all(agree(r, first) for runs in results.values() for r in runs) else "NO: runs differ"
        if not pandas:
            line.append("not run (--no-pandas)")
        elif need > available / 2:
            line.append(f"skipped: needs ~{gb(need)}, {gb(available)} available")
        else:
            whole = measured("pandas", 1, lake, reference_path)
            print(f"  pandas, whole window: {cell([whole])}", flush=True)
            line.append(cell([whole]))
            same = same if agree(whole, last) else "NO: sharded and whole differ"
        drifted = sorted(k for k, v in last["verdicts"].items() if v != "ok")
        return [*line, same, f"{len(drifted)}: {', '.join(drifted)}"]
    finally:
        shutil.rmtree(lake, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,10M,30M", help="comma-separated, of " + ", ".join(SIZES))
    parser.add_argument("--workers", default="1,2", help="worker process counts of the sharded runs")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the lakes are written (and removed)")
    parser.add_argument("--no-pandas", action="store_true", help="skip the unsharded pandas runs")
    parser.add_argument("--repeats", type=int, default=1, help="sharded runs per worker count (median shown)")
    parser.add_argument("--run", choices=["sharded", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:  # one measured run (a child of the table's process)
        print(json.dumps(run(args.run, int(args.workers), args.lake, args.reference)))
        return
    if args.rows:  # write a lake (a child)
        write_lake(args.lake, args.rows)
        return
    if args.reference:  # write the reference (a child)
        write_reference(args.reference)
        return
    sizes = [s.strip() for s in args.sizes.split(",")]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {', '.join(unknown)}; known: {', '.join(SIZES)}")
    worker_counts = [int(w) for w in args.workers.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{gb(psutil.virtual_memory().available)} memory available", flush=True)
    header = ["rows", "files / lake", *[f"sharded, {w} worker{'s' if w > 1 else ''}" for w in worker_counts],
              "speed-up", "pandas, whole window", "same verdicts and p-values", "drifted features"]
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="scale-") as tmp:
        reference_path = Path(tmp) / "reference.pkl"
        in_child("--reference", str(reference_path))
        lines = [measure_size(size, Path(tmp), reference_path, worker_counts, not args.no_pandas, args.repeats)
                 for size in sizes]
    print("\nseconds of profile + compare (median, range over --repeats), CPU seconds of the run's processes and the\n"
          "cores they kept busy (CPU / seconds: under 2 with 2 workers when the machine has other work), peak summed\n"
          "RSS of the run's processes\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for line in lines:
        print("| " + " | ".join(line) + " |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
