"""The domain-classifier drift test (core/domain_classifier.py): level, noise floor and power.

    python benchmarks/domain_classifier.py [--reps 20]

1. Null windows of skewed, correlated synthetic rows (8 columns) at several sizes:
   the share of windows rejected at alpha 0.05 (the test's level), and the observed
   E|2 AUC - 1| over the module's noise floor (1.0 when the floor is right).
2. Real digits (scikit-learn's 1,797 8x8 images, pixels 0..16): per repetition a random
   800 images are the reference, and a window of 30, 100 or 400 is drawn without
   replacement from the other 997, then shifted in every image: rotation by 15 or 30
   degrees, Gaussian noise of SD 2, classes 0-4 only, +2 brightness (every shifted
   image back on the 0..16 grid, rounded and clipped). Two paths:
   ``pixels``: domain_classifier_test on the 64 pooled cells (core.modalities.pooled_pixels);
   ``report``: compare_profiles(thresholds={"pixels": "domain_classifier"}) on the vision
   profiles, i.e. the classifier on the summaries' samples in the reference's 16 scaled
   principal coordinates. "detect" is p <= 0.05; "drifted" is the report's verdict
   (significant after Holm across the report AND effect net of the floor above 0.133).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile  # noqa: E402
from monitoring_pipeline.core.domain_classifier import auc_noise_floor, domain_classifier_test  # noqa: E402
from monitoring_pipeline.core.modalities import pooled_pixels  # noqa: E402

REF_SIZE = 800
SIZES = (30, 100, 400)


def null_table(reps: int) -> None:
    mix = np.random.default_rng(9).normal(size=(8, 8))
    rng = np.random.default_rng(1)
    print(f"null windows, skewed correlated rows (8 columns), {reps * 5} windows per row")
    print(f"{'n_ref':>6} {'n_cur':>6} {'rejected':>9} {'mean 2AUC-1':>12} {'E|2AUC-1|/floor':>16} {'s/test':>7}")
    for n, m in ((1000, 30), (1000, 100), (1000, 1000), (60, 60), (500, 15)):
        ps, effects, start = [], [], time.perf_counter()
        for i in range(reps * 5):
            a = np.exp(rng.normal(size=(n, 8)) / 2) @ mix
            b = np.exp(rng.normal(size=(m, 8)) / 2) @ mix
            r = domain_classifier_test(a, b, seed=i)
            ps.append(r.p_value)
            effects.append(r.effect)
        effects = np.asarray(effects)
        ratio = np.abs(effects).mean() / auc_noise_floor(n, m)
        print(f"{n:>6} {m:>6} {np.mean(np.asarray(ps) <= 0.05):>9.3f} {effects.mean():>12.4f} {ratio:>16.2f} "
              f"{(time.perf_counter() - start) / len(ps):>7.3f}")


def _grid(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images), 0, 16)


def _rotate(deg):
    return lambda x, rng: _grid(np.stack([ndimage.rotate(im[0], deg, reshape=False) for im in x])[:, None])


SHIFTS = {
    "none": lambda x, rng: x,
    "rotate_15": _rotate(15),
    "rotate_30": _rotate(30),
    "noise_2": lambda x, rng: _grid(x + rng.normal(0, 2, size=x.shape)),
    "classes_0_4": None,  # drawn from digits 0-4 instead of shifted
    "brighter_2": lambda x, rng: _grid(x + 2),
}


def digits_table(reps: int) -> None:
    data = load_digits()
    images, labels = data.images.reshape(-1, 1, 8, 8), data.target
    rng = np.random.default_rng(0)
    cells: dict = {}
    start = time.perf_counter()
    for rep in range(reps):
        order = rng.permutation(len(images))
        ref_images, pool = images[order[:REF_SIZE]], order[REF_SIZE:]
        ref_pixels = pooled_pixels(ref_images, 1)
        ref_profile = compute_dataset_profile(ref_images, "vision")
        for size in SIZES:
            for name, shift in SHIFTS.items():
                if shift is None:
                    low = pool[labels[pool] < 5]
                    window = images[rng.choice(low, size, replace=False)]
                else:
                    window = shift(images[rng.choice(pool, size, replace=False)], rng)
                direct = domain_classifier_test(ref_pixels, pooled_pixels(window, 1), seed=rep)
                report = compare_profiles(ref_profile, compute_dataset_profile(window, "vision", reference=ref_profile),
                                          thresholds={"pixels": "domain_classifier"}, seed=rep)
                row = {r["name"]: r for r in report["features"]}["pixels"]
                cell = cells.setdefault((name, size), [])
                cell.append((direct.p_value <= 0.05, direct.auc, row["p_value"] is not None and row["p_value"] <= 0.05,
                             row["drifted"]))
    print(f"\ndigits: reference {REF_SIZE} images, {reps} windows per cell, shift in every image "
          f"({time.perf_counter() - start:.0f} s)")
    header = f"{'shift':<12}" + "".join(f" | {s:>4}: pixels AUC  report detect drifted" for s in SIZES)
    print(header)
    for name in SHIFTS:
        line = f"{name:<12}"
        for size in SIZES:
            c = np.asarray(cells[(name, size)], dtype=float)
            line += f" | {'':>4}  {c[:, 0].mean():>6.2f} {c[:, 1].mean():.2f}  {c[:, 2].mean():>6.2f} {c[:, 3].mean():>7.2f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20, help="windows per digits cell (null: 5x as many)")
    args = parser.parse_args()
    null_table(args.reps)
    digits_table(args.reps)


if __name__ == "__main__":
    main()
