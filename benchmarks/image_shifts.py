"""Failing-Loudly-style detection of image shifts on digits, per detector, with false alarms.

    python benchmarks/image_shifts.py [--quick] [--shift-reps 50] [--null-reps 300] [--workers 2]

After Rabanser et al. (2019, "Failing Loudly"), on scikit-learn's digits (1,797 8x8
images, the only real image set available offline). The project's ImageCNN
(``train("image_cnn", ...)``, seed 0) is fitted on a fixed random split of 900 images;
the other 897 are the *pool*. Every reference (1,000 images) and every window (30,
100 or 1,000 images) is drawn WITH replacement from that one pool, so reference and
window are both i.i.d. from the pool's empirical distribution and the null holds
exactly at every size, including windows larger than the pool. Each repetition draws
a fresh reference; its windows (unshifted, and one per shift cell) are drawn anew.

Shifts, each applied to 10%, 50% or 100% of a window's images (chosen at random);
pixels are on the 0..16 scale of the data set and every shifted image is clipped to
[0, 16]:

- ``rotate_15`` / ``rotate_30``: ``scipy.ndimage.rotate`` by +15 / +30 degrees
  (counter-clockwise, ``reshape=False``, cubic spline);
- ``noise_2`` / ``noise_4``: Gaussian noise of standard deviation 2 / 4 pixel units;
- ``classes_0_4``: the affected share of the window is drawn from the pool's digits
  0-4 only (a class-mix change; at 100% the window holds no 5-9);
- ``brighter_2``: +2 on every pixel.

Images reach the CNN and the vision profile divided by 16 (the [0, 1] scale the
digits monitor serves). Detectors, one "detected" per window:

- ``channel``: the vision report's channel_0_mean, brightness and contrast rows;
  detected when any is significant after Holm over those three rows;
- ``pixels``: the "pixels" row (8x8 pooled cells, core/embedding.py's test);
- ``cnn_emb``: the "embedding" row, the CNN's penultimate activations;
- ``bbsd``: the outputs report's probability_<class> rows (KS each) and the
  predicted_class chi-square, from the CNN's softmax, Holm over those eleven rows;
- ``report``: the whole input report as the digits monitor's data_drift_report holds it
  (channel rows, image size, pixels and the CNN embedding): any row significant after
  Holm across the report; ``monitor``: that report or the outputs report (BBSD), each
  corrected on its own as the monitor's two drift assets are (so its false alarms may
  reach about twice alpha);
- ``dc_pix`` / ``dc_cnn``: the domain classifier (core/domain_classifier.py: a
  cross-fitted logistic regression telling window rows from reference rows) on the
  "pixels" / "embedding" rows, from a second vision report that uses
  ``thresholds={"pixels": "domain_classifier", "embedding": "domain_classifier"}``.

The first table counts *detection* as significance at alpha 0.05, as the paper does.
The second counts the pipeline's *verdict*: the detector's row(s) ``drifted``
(significant after Holm across the whole report, and an effect above the method's
threshold after its noise floor). The ``null`` row is the false-alarm rate on
unshifted windows. Detection averaged over the 18 shift cells (6 shifts x 3
fractions) is then set against the paper's best at 100 samples (about 0.5) and the
target of issue 12 (at least 0.8 at 1,000 with at most 5% false alarms). Standard
errors of the averages are taken over repetitions (a repetition's cells share one
reference).

BLAS and torch run one thread per process (set below before numpy loads; export
OPENBLAS_NUM_THREADS to override); ``--workers`` processes share the repetitions.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_pipeline.core import compare_profiles, compute_dataset_profile  # noqa: E402
from monitoring_pipeline.models.training import TrainedModel, train  # noqa: E402
from monitoring_pipeline.models.views import model_views  # noqa: E402

torch.set_num_threads(1)

ALPHA = 0.05
TRAIN_IMAGES = 900
REFERENCE_IMAGES = 1000
SIZES = (30, 100, 1000)
FRACTIONS = (0.1, 0.5, 1.0)
PIXEL_MAX = 16.0
DETECTORS = ("channel", "pixels", "cnn_emb", "bbsd", "dc_pix", "dc_cnn", "report", "monitor")
# the second vision report: both embedding rows judged by the domain classifier instead
DOMAIN_CLASSIFIER = {"pixels": "domain_classifier", "embedding": "domain_classifier"}
CHANNEL_ROWS = ("channel_0_mean", "brightness", "contrast")
PAPER_BEST_AT_100 = 0.5  # Rabanser et al. 2019, best detector (BBSD) at 100 samples, about
TARGET_AT_1000, TARGET_FALSE_ALARMS = 0.8, 0.05  # issue 12


def _rotate(angle: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def shift(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.stack([ndimage.rotate(image, angle, reshape=False) for image in images])
    return shift


def _noise(std: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def shift(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return images + rng.normal(0.0, std, images.shape)
    return shift


def _brighter(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return images + 2.0


# Pixel shifts take [k, 8, 8] images on the 0..16 scale; the class-mix shift (None) changes
# which images are drawn instead.
SHIFTS: dict[str, Callable | None] = {
    "rotate_15": _rotate(15.0), "rotate_30": _rotate(30.0),
    "noise_2": _noise(2.0), "noise_4": _noise(4.0),
    "classes_0_4": None, "brighter_2": _brighter,
}
CELLS = [(shift, fraction) for shift in SHIFTS for fraction in FRACTIONS]


@dataclass(frozen=True)
class Population:
    """The held-out pool (images on the 0..16 scale and labels) and the CNN fitted on the rest."""

    images: np.ndarray  # [P, 8, 8]
    labels: np.ndarray
    model: TrainedModel

    @property
    def low(self) -> np.ndarray:
        """Pool indices of the digits 0-4."""
        return np.flatnonzero(self.labels <= 4)


def build_population(seed: int) -> tuple[Population, float]:
    """Fit the CNN on a seeded split of 900 digits; return the pool and the CNN's accuracy on it."""
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    fit, pool = order[:TRAIN_IMAGES], order[TRAIN_IMAGES:]
    images = digits.images.astype(np.float64)
    model = train("image_cnn", images[fit][:, None] / PIXEL_MAX, digits.target[fit], seed=seed)
    population = Population(images[pool], digits.target[pool], model)
    accuracy = float((model.predict(images[pool][:, None] / PIXEL_MAX) == digits.target[pool]).mean())
    return population, accuracy


def profiles(population: Population, images: np.ndarray, references=None):
    """The vision profile (pixels and CNN embeddings) and the outputs profile of [n, 8, 8] images."""
    x = images[:, None] / PIXEL_MAX
    views = model_views(population.model, x)
    ref_in, ref_out = references if references is not None else (None, None)
    inputs = compute_dataset_profile({"pixel_values": x, "embeddings": views.embeddings}, "vision",
                                     reference=ref_in)
    outputs = compute_dataset_profile({"predictions": views.predictions, "probabilities": views.probabilities,
                                       "classes": views.classes}, "outputs", reference=ref_out)
    return inputs, outputs


def window(population: Population, size: int, shift: str | None, fraction: float,
           rng: np.random.Generator) -> np.ndarray:
    """``size`` pool images drawn with replacement, a ``fraction`` of them shifted, clipped to [0, 16]."""
    rows = rng.integers(0, population.labels.size, size)
    if shift is None:
        return population.images[rows]
    affected = rng.choice(size, int(round(fraction * size)), replace=False)
    if SHIFTS[shift] is None:  # the class mix: the affected share comes from digits 0-4 only
        low = population.low
        rows[affected] = low[rng.integers(0, low.size, affected.size)]
        return population.images[rows]
    images = population.images[rows].copy()
    images[affected] = SHIFTS[shift](images[affected], rng)
    return np.clip(images, 0.0, PIXEL_MAX)


def holm_rejects_any(p_values: list[float], alpha: float = ALPHA) -> bool:
    """Whether Holm's procedure over ``p_values`` rejects at least one: its first step
    rejects exactly when the smallest p-value is at most alpha / k, and later steps only
    follow a first rejection."""
    return min(p_values) * len(p_values) <= alpha


def detections(reference, current, seed: int) -> dict[str, tuple[bool, bool]]:
    """Per detector: (significant at alpha as the paper counts, the report's drifted verdict)."""
    inputs_report = compare_profiles(reference[0], current[0], seed=seed)
    outputs_report = compare_profiles(reference[1], current[1], seed=seed)
    vision = {r["name"]: r for r in inputs_report["features"]}
    outputs = {r["name"]: r for r in outputs_report["features"]}
    dc = {r["name"]: r for r in compare_profiles(reference[0], current[0], seed=seed,
                                                 thresholds=DOMAIN_CLASSIFIER)["features"]}
    bbsd = [name for name in outputs if name.startswith("probability_")] + ["predicted_class"]
    return {
        "channel": (holm_rejects_any([vision[n]["p_value"] for n in CHANNEL_ROWS]),
                    any(vision[n]["drifted"] for n in CHANNEL_ROWS)),
        "pixels": (vision["pixels"]["p_value"] <= ALPHA, bool(vision["pixels"]["drifted"])),
        "cnn_emb": (vision["embedding"]["p_value"] <= ALPHA, bool(vision["embedding"]["drifted"])),
        "bbsd": (holm_rejects_any([outputs[n]["p_value"] for n in bbsd]), any(outputs[n]["drifted"] for n in bbsd)),
        "dc_pix": (dc["pixels"]["p_value"] <= ALPHA, bool(dc["pixels"]["drifted"])),
        "dc_cnn": (dc["embedding"]["p_value"] <= ALPHA, bool(dc["embedding"]["drifted"])),
        "report": (any(r["significant"] for r in inputs_report["features"]), inputs_report["n_drifted"] > 0),
        "monitor": (any(r["significant"] for r in inputs_report["features"] + outputs_report["features"]),
                    inputs_report["n_drifted"] + outputs_report["n_drifted"] > 0),
    }


# --- the work of one process ------------------------------------------------------------

_POPULATION: list[Population] = []


def _init(population: Population) -> None:
    torch.set_num_threads(1)
    _POPULATION[:] = [population]


@lru_cache(maxsize=2)
def _reference(seed: int, rep: int):
    rng = np.random.default_rng([seed, rep, 0])
    population = _POPULATION[0]
    return profiles(population, population.images[rng.integers(0, population.labels.size, REFERENCE_IMAGES)])


def run_repetition(seed: int, size: int, rep: int, with_shifts: bool) -> tuple[int, int, dict, float]:
    """One repetition at one window size: its unshifted window and, with ``with_shifts``,
    one window per shift cell, all against the repetition's reference. Returns
    (size, rep, {cell: detections}, CPU seconds of this process)."""
    started = time.process_time()
    population = _POPULATION[0]
    reference = _reference(seed, rep)
    cells = [("null", 0.0)] + (CELLS if with_shifts else [])
    out = {}
    for i, (shift, fraction) in enumerate(cells):
        rng = np.random.default_rng([seed, rep, size, i + 1])
        images = window(population, size, None if shift == "null" else shift, fraction, rng)
        out[(shift, fraction)] = detections(reference, profiles(population, images, reference),
                                            seed=rep * 100 + i)
    return size, rep, out, time.process_time() - started


# --- tables -------------------------------------------------------------------------------

def _rate(results: dict, size: int, cell, detector: str, which: int) -> tuple[float, int]:
    hits = [r[cell][detector][which] for (s, _), r in results.items() if s == size and cell in r]
    return float(np.mean(hits)), len(hits)


def _averaged(results: dict, size: int, detector: str, which: int) -> tuple[float, float, int]:
    """Detection averaged over the shift cells, and its standard error over repetitions."""
    per_rep = [np.mean([r[cell][detector][which] for cell in CELLS])
               for (s, _), r in results.items() if s == size and CELLS[0] in r]
    return float(np.mean(per_rep)), float(np.std(per_rep, ddof=1) / np.sqrt(len(per_rep))), len(per_rep)


def print_cell_table(results: dict, which: int, title: str) -> None:
    print(f"\n{title}")
    head = f"{'shift':<12} {'frac':>4} | " + " | ".join(
        " ".join(f"{d:>7}" for d in DETECTORS) for _ in SIZES)
    print(" " * 20 + "".join(f"{'n = ' + str(s):^{8 * len(DETECTORS) + 2}}" for s in SIZES))
    print(head)
    print("-" * len(head))
    for cell in [("null", 0.0)] + CELLS:
        label = f"{cell[0]:<12} {'' if cell[0] == 'null' else f'{cell[1]:.0%}':>4}"
        print(label + " | " + " | ".join(" ".join(f"{_rate(results, s, cell, d, which)[0]:>7.2f}"
                                                   for d in DETECTORS) for s in SIZES))


def print_summary(results: dict) -> None:
    print("\nAveraged over the 18 shift cells (+- standard error over repetitions); false alarms on null windows")
    head = (f"{'detector':<8} {'n':>5} | {'detect':>6} {'+-':>5} | {'verdict':>7} {'+-':>5} | "
            f"{'false alarm':>11} {'verdict FA':>10} | {'reps':>4} {'null reps':>9}")
    print(head)
    print("-" * len(head))
    for size in SIZES:
        for d in DETECTORS:
            det, det_se, reps = _averaged(results, size, d, 0)
            ver, ver_se, _ = _averaged(results, size, d, 1)
            fa, nulls = _rate(results, size, ("null", 0.0), d, 0)
            vfa, _ = _rate(results, size, ("null", 0.0), d, 1)
            print(f"{d:<8} {size:>5} | {det:>6.3f} {det_se:>5.3f} | {ver:>7.3f} {ver_se:>5.3f} | "
                  f"{fa:>11.3f} {vfa:>10.3f} | {reps:>4} {nulls:>9}")
    print(f"\nPaper's best at 100 samples: about {PAPER_BEST_AT_100}. Issue 12's target: at 1,000, "
          f">= {TARGET_AT_1000} detection with <= {TARGET_FALSE_ALARMS:.0%} false alarms.")
    for d in DETECTORS:
        at100 = _averaged(results, 100, d, 0)[0]
        at1000 = _averaged(results, 1000, d, 0)[0]
        fa1000, nulls = _rate(results, 1000, ("null", 0.0), d, 0)
        fa_se = np.sqrt(max(fa1000 * (1 - fa1000), 1e-12) / nulls)
        met = at1000 >= TARGET_AT_1000 and fa1000 <= TARGET_FALSE_ALARMS
        print(f"  {d:<8} at 100: {at100:.3f} ({'above' if at100 > PAPER_BEST_AT_100 else 'not above'} the paper's "
              f"best); at 1,000: {at1000:.3f} with {fa1000:.1%} +- {fa_se:.1%} false alarms "
              f"({'meets' if met else 'misses'} the target as measured)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run: 4 shift reps, 20 null reps")
    parser.add_argument("--shift-reps", type=int, default=50, help="repetitions of each shift cell per size")
    parser.add_argument("--null-reps", type=int, default=300, help="unshifted windows per size")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.shift_reps, args.null_reps = 4, 20
    if args.shift_reps < 2 or args.null_reps < args.shift_reps:
        parser.error("need --shift-reps >= 2 and --null-reps >= --shift-reps")
    started = time.perf_counter()
    population, accuracy = build_population(args.seed)
    print(f"ImageCNN fitted on {TRAIN_IMAGES} digits in {time.perf_counter() - started:.1f} s; accuracy on the "
          f"pool of {population.labels.size}: {accuracy:.3f}")
    print(f"reference {REFERENCE_IMAGES} images; {args.shift_reps} reps per shift cell, {args.null_reps} null "
          f"windows per size; alpha {ALPHA}; {args.workers} worker(s), "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    tasks = [(args.seed, size, rep, rep < args.shift_reps) for rep in range(args.null_reps) for size in SIZES]
    results, seconds = {}, dict.fromkeys(SIZES, 0.0)
    with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(population,)) as pool:
        for size, rep, out, took in pool.map(run_repetition, *zip(*tasks), chunksize=1):
            results[(size, rep)] = out
            seconds[size] += took
    print("worker CPU seconds per size (references included): " + ", ".join(f"{s}: {seconds[s]:.0f}" for s in SIZES))
    binomial = 0.5 / np.sqrt(args.shift_reps)
    print_cell_table(results, 0, f"Detection (significant at alpha {ALPHA}), share of windows; {args.shift_reps} "
                                 f"reps per shift cell (standard error at most {binomial:.3f}), "
                                 f"{args.null_reps} null windows")
    print_cell_table(results, 1, "Verdict (the report's 'drifted': significant after Holm across the report AND "
                                 "effect above threshold), share of windows")
    print_summary(results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s wall, {time.process_time() + sum(seconds.values()):.0f} s CPU")


if __name__ == "__main__":
    main()
