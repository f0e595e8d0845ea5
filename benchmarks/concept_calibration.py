"""False alarms and detection of concept drift, tabular and images, with the permutation test.

    python benchmarks/concept_calibration.py [--null-reps 100] [--reps 20] [--rows 60 300]

Tabular: NYC flights of January-February 2013 (delayed over 15 minutes or not; 7
features, 3 of them categorical). The reference is 1,000 random rows of that period;
each window is ``rows`` other rows of the same period, drawn at random (seeded).
Images: the digits reference split (1,257 labeled 8x8 images, pooled to features by
``image_features``); each window is ``rows`` images of the held-out split.

Null windows are the rows as they are (the same joint distribution as the reference).
Concept changes keep the inputs and change the relation:
- tabular "labels flipped": every label inverted (1 - y);
- tabular "new driver": the label becomes "distance above the period's median";
- images "rotated": turned by 30 degrees (the story's shift: same labels, new inputs);
- images "labels shifted": every digit d is labeled (d + 1) mod 10.

Prints, per data set, window size and kind, the share of windows drifted at all
(false alarms on null rows, detection otherwise), at "alert" (the performance signal),
the shares whose importance and performance signals were significant after Holm, and
the seconds per call. Images run with ``IMAGE_OPTIONS`` (what the pipeline uses).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_pipeline.core.concept import IMAGE_OPTIONS, concept_drift, image_features  # noqa: E402
from monitoring_pipeline.demo.bundled import bundled  # noqa: E402
from monitoring_pipeline.demo.drift import inject  # noqa: E402

REFERENCE_ROWS = 1_000


def images(frame: pd.DataFrame) -> pd.DataFrame:
    return image_features(np.stack([np.asarray(x, dtype=np.float32) for x in frame["image"]]))


def tabular_case():
    """Reference, the rows windows come from, and the window -> (X, y) changes by kind."""
    period = bundled("flights").reference
    order = np.random.default_rng(0).permutation(len(period))
    reference, rest = period.iloc[order[:REFERENCE_ROWS]], period.iloc[order[REFERENCE_ROWS:]]
    features = [c for c in period.columns if c != "label"]
    median = float(period["distance"].median())
    kinds = {
        "null": lambda w, seed: (w[features], w["label"].to_numpy()),
        "labels flipped": lambda w, seed: (w[features], 1 - w["label"].to_numpy()),
        "new driver": lambda w, seed: (w[features], (w["distance"] > median).astype(int).to_numpy()),
    }
    return reference[features], reference["label"].to_numpy(), rest, kinds, {}


def image_case():
    data = bundled("digits")
    shift = lambda y: ((y.astype(int) + 1) % 10).astype(str)  # noqa: E731
    kinds = {
        "null": lambda w, seed: (images(w), w["label"].astype(str).to_numpy()),
        "rotated": lambda w, seed: (images(inject(w, "rotation", 30.0, image_column="image", seed=seed)),
                                    w["label"].astype(str).to_numpy()),
        "labels shifted": lambda w, seed: (images(w), shift(w["label"].to_numpy())),
    }
    return (images(data.reference), data.reference["label"].astype(str).to_numpy(), data.current, kinds,
            IMAGE_OPTIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-reps", type=int, default=100)
    parser.add_argument("--reps", type=int, default=20, help="windows per concept change")
    parser.add_argument("--rows", type=int, nargs="+", default=[60, 300])
    parser.add_argument("--data", nargs="+", default=["tabular", "images"], choices=["tabular", "images"])
    args = parser.parse_args()
    print(f"{'data':>7} | {'rows':>4} | {'windows':>14} | {'reps':>4} | {'drifted':>7} | {'alert':>5} | "
          f"{'imp sig':>7} | {'perf sig':>8} | {'perms':>5} | s/call")
    for name in args.data:
        ref_X, ref_y, source, kinds, options = tabular_case() if name == "tabular" else image_case()
        for rows in args.rows:
            for kind, change in kinds.items():
                reps = args.null_reps if kind == "null" else args.reps
                drifted = alert = imp = perf = perms = n = 0
                started = time.perf_counter()
                for seed in range(reps):
                    window = source.sample(rows, random_state=seed).reset_index(drop=True)
                    X, y = change(window, seed)
                    if len(set(y)) < 2:
                        continue
                    result = concept_drift(ref_X, ref_y, X, y, seed=seed, **options)
                    n += 1
                    drifted += result.drifted
                    alert += result.severity == "alert"
                    imp += result.importance_p_adjusted is not None and result.importance_p_adjusted <= result.alpha
                    perf += result.performance_p_adjusted is not None and result.performance_p_adjusted <= result.alpha
                    perms += result.n_permutations
                seconds = (time.perf_counter() - started) / max(1, n)
                print(f"{name:>7} | {rows:>4} | {kind:>14} | {n:>4} | {drifted / n:>7.1%} | {alert / n:>5.1%} | "
                      f"{imp / n:>7.1%} | {perf / n:>8.1%} | {perms / n:>5.0f} | {seconds:.2f}", flush=True)


if __name__ == "__main__":
    main()
