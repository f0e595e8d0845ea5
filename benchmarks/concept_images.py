"""False alarms and detection of concept drift on images (pixels pooled to 8x8 features).

    python benchmarks/concept_images.py [--null-reps 100] [--reps 50] [--rows 60] [--performance-only]

The reference is the digits reference split (1,257 labeled images); each window is
``--rows`` labeled images drawn from the held-out split, seeded. Null windows are the
images as they are; drifted windows are the same draws rotated by 30 degrees (the
story's shift). Prints, per kind of window, the share at each severity with the
pipeline's options for images (``IMAGE_OPTIONS``: both signals, each with its
permutation test), and the seconds per call; ``--performance-only`` switches the
importance signal off, as images did before it had a test. benchmarks/concept_calibration.py
adds tabular data, 300-row windows and a concept change that keeps the images.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_pipeline.core.concept import IMAGE_OPTIONS, concept_drift, image_features  # noqa: E402
from monitoring_pipeline.demo.bundled import bundled  # noqa: E402
from monitoring_pipeline.demo.drift import inject  # noqa: E402


def images(frame) -> np.ndarray:
    return np.stack([np.asarray(x, dtype=np.float32) for x in frame["image"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-reps", type=int, default=100)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--performance-only", action="store_true",
                        help="ignore the importance signal (min_correlation -1), as images did before it had a test")
    args = parser.parse_args()
    options = {**IMAGE_OPTIONS, "min_correlation": -1.0} if args.performance_only else IMAGE_OPTIONS
    data = bundled("digits")
    ref_X, ref_y = image_features(images(data.reference)), data.reference["label"].astype(str).to_numpy()
    print(f"{'windows':>8} | {'reps':>4} | {'ok':>5} | {'warn':>5} | {'alert':>5} | s/call")
    for kind, reps in (("null", args.null_reps), ("rotated", args.reps)):
        counts, started = {"ok": 0, "warn": 0, "alert": 0}, time.perf_counter()
        for seed in range(reps):
            window = data.current.sample(args.rows, random_state=seed).reset_index(drop=True)
            if kind == "rotated":
                window = inject(window, "rotation", 30.0, image_column="image", seed=seed)
            y = window["label"].astype(str).to_numpy()
            if len(set(y)) < 2:
                continue
            result = concept_drift(ref_X, ref_y, image_features(images(window)), y, seed=seed, **options)
            counts[result.severity] += 1
        n = sum(counts.values())
        print(f"{kind:>8} | {n:>4} | " + " | ".join(f"{counts[s] / n:>5.1%}" for s in ("ok", "warn", "alert"))
              + f" | {(time.perf_counter() - started) / n:.2f}", flush=True)


if __name__ == "__main__":
    main()
