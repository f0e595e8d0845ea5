"""Label-free accuracy estimates against the realized accuracy, on real data, with NannyML's CBPE as the peer.

    python benchmarks/estimation.py [--quick] [--reps 60] [--workers 2] [--sizes 100 500 2000] [--families ...]

Windows of 100, 500 and 2,000 rows, each with its known labels, in six shift families
(benchmarks/estimation_cases.py builds the data and the monitored models; nothing is
downloaded):

- ``tabular time``: NYC flights (hist gradient boosting trained on January-February;
  a window is one later month's flights: the real seasonal shift) and the General Social
  Survey's vocabulary test (carData GSSvocab; logistic regression for "score 7 or more"
  trained on 1978-1990; a window is one later survey year);
- ``tabular feature`` (covariate shift, P(y|x) unchanged): rows held out of the reference
  period, drawn with probability proportional to exp(+-1.5 z) of one feature's z-score
  (the high or the low side, at random): flights by scheduled hour, breast cancer by mean
  radius (random forest), credit default (ISLR Default, logistic regression) by balance;
- ``tabular hidden feature`` (covariate shift the model's scores do not see): the model
  is trained without a protected attribute that predicts the label, the estimation's
  ``X`` holds it, and windows are drawn tilted by it as above: Boston HMDA mortgage
  denials by race (logistic regression; 680 held-out rows) and GSS income above the
  median by sex (hist gradient boosting; 24,887 rows). P(y | scores) moves with the
  window there, which CBPE takes as fixed; why these sets, in estimation_cases.py;
- ``tabular iid``: the same three pools drawn uniformly (the control: no shift);
- ``images``: the project's CNN on 700 digits; windows from the 540 held out, unshifted,
  rotated 30 degrees, brightness +0.4 or Gaussian noise 0.4 (demo.drift.inject);
- ``text time``: Trump's tweets, Android or iPhone (TF-IDF + logistic regression trained
  on 2015 to mid-2016); a window is one later half-year (2016H2, 2017H1, 2017H2).

The estimation reference is the model's outputs on labeled reference rows it was not
trained on, with ``X`` its input features (the tabular frame, the 64 pixels, the
hashed embedding of a tweet; for ``tabular hidden feature`` also the attribute the model
leaves out). A group of rows smaller than twice the window size is
drawn WITH replacement (``repl`` gives the share of windows drawn so): the breast-cancer
pool has 171 rows, HMDA 680, digits 540, a GSS year 961 to 1,871, a tweets half-year 877 to 1,417.
Such windows share their pool's own sampling error, which an interval for a fresh window
does not cover, so their coverage may fall short of 95% for that reason alone.

Methods: ``cbpe`` and ``pape``: core.estimation.estimate_performance; ``raw conf``: the
mean top-class probability with a normal 95% interval (what the project reported before
issue 13); ``nannyml``: NannyML 0.13's CBPE (accuracy, its default calibration), fitted on
the same reference and run on the same windows, in its own virtual environment
(benchmarks/.venv-nannyml, created on the first run; see estimation_nannyml_worker.py).
NannyML's interval is its value -+ 3 sampling errors, not a 95% interval.

Columns: ``acc`` the mean realized accuracy; ``noise`` the sampling noise of a window's
realized accuracy, its mean absolute deviation from the population's, sqrt(2/pi) sqrt(acc
(1 - acc) (1/rows + 1/pool)), the pool's term only for windows drawn with replacement
(``pool``: the group's rows, 1 / sum p^2 when weighted): about the part of the MAE no
estimate can remove (less where rows differ in difficulty); ``MAE`` the mean absolute
error of the estimated accuracy; ``cover`` the share of windows whose realized accuracy lies in
[low, high]; ``unrel`` the share flagged ``reliable: false`` (``-``: the method has no
flag); ``MAE rel`` the MAE over the windows not flagged; ``s/est`` seconds per estimate
(NannyML: its estimate call; its fit, once per reference, is printed apart). The last
lines compare, per family, our better method's MAE with NannyML's against the target of
issue 13: at most NannyML's everywhere, at most half of it under covariate shift
(``tabular feature``, ``tabular hidden feature`` and ``images``). ``--families`` runs a
subset (a smoke run of one family). Seeded: a rerun prints the same numbers, except the
seconds. BLAS runs one thread per process; ``--workers`` processes share our estimates.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from estimation_cases import FAMILIES, Case, all_cases  # noqa: E402

PEER_VENV = HERE / ".venv-nannyml"
PEER_REQUIREMENTS = ["nannyml==0.13.*", "statsmodels"]  # nannyml 0.13 imports statsmodels without declaring it
WORKER = HERE / "estimation_nannyml_worker.py"
METHODS = ("cbpe", "pape", "raw conf", "nannyml", "oracle")
OURS = ("cbpe", "pape")
COVARIATE = ("tabular feature", "tabular hidden feature", "images")
FW = max(map(len, FAMILIES))  # the family column's width
SEED = 13
Z95 = 1.959963984540054

CASES: list[Case] = []  # set before the worker processes fork
WINDOWS: dict[tuple[int, int], list[np.ndarray]] = {}
GROUPS: dict[tuple[int, int], list[str]] = {}


def draw_windows(cases: list[Case], sizes: list[int], reps: int) -> tuple[dict, dict]:
    """Pool indices of every window, and per window the effective size of the group it was
    drawn from with replacement (NaN: drawn without)."""
    windows, pools = {}, {}
    for i, case in enumerate(cases):
        for size in sizes:
            rng = np.random.default_rng([SEED, i, size])
            drawn = [case.window(size, rng) for _ in range(reps)]
            windows[i, size] = [idx for idx, _, _ in drawn]
            GROUPS[i, size] = [group for _, group, _ in drawn]
            pools[i, size] = np.array([np.nan if pool is None else pool for _, _, pool in drawn])
    return windows, pools


def sampling_noise(accuracy: np.ndarray, size: int, pool: np.ndarray) -> np.ndarray:
    """Mean absolute deviation of a window's realized accuracy from the population's: binomial
    over the window's rows, plus the pool's own when drawn with replacement from a small pool."""
    variance = accuracy * (1 - accuracy) * (1 / size + np.where(np.isnan(pool), 0.0, 1 / np.nan_to_num(pool, nan=1.0)))
    return np.sqrt(2 / np.pi) * np.sqrt(variance)


def current_of(case: Case, idx: np.ndarray) -> dict:
    X = case.pool["X"]
    return {"y_pred": case.pool["y_pred"][idx], "y_score": case.pool["y_score"][idx],
            "X": X.iloc[idx].reset_index(drop=True) if hasattr(X, "iloc") else X[idx],
            "classes": case.reference["classes"]}


def raw_confidence(case: Case, idx: np.ndarray) -> tuple[float, float, float, float]:
    """The mean top-class probability, -+ 1.96 of its standard error (a sum of Bernoulli(c))."""
    conf = top_confidence(case.pool["y_score"][idx])
    se = float(np.sqrt(np.sum(conf * (1 - conf))) / conf.size)
    mean = float(conf.mean())
    return mean, mean - Z95 * se, mean + Z95 * se, np.nan


def top_confidence(score: np.ndarray) -> np.ndarray:
    return np.maximum(score, 1 - score) if score.ndim == 1 else score.max(axis=1)


def oracle(case: Case, group_name: str, idx: np.ndarray) -> tuple[float, float, float, float]:
    """A bound, not a method: the window's mean top-class confidence mapped through the calibration
    curve of its OWN group, fitted with the group's labels (isotonic regression of correctness on
    confidence, weighted by the group's sampling probabilities, in-sample). It is what CBPE or PAPE
    would give with a perfect density ratio and an unlimited reference; its MAE is the floor of
    every estimate that goes through a calibration of the scores, as the issue's methods do."""
    from sklearn.isotonic import IsotonicRegression

    group = next(g for g in case.groups if g.name == group_name)
    conf = top_confidence(case.pool["y_score"])
    correct = (case.pool["y_true"] == case.pool["y_pred"]).astype(np.float64)
    weight = None if group.p is None else group.p * group.rows.size
    curve = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    curve.fit(conf[group.rows], correct[group.rows], sample_weight=weight)
    return float(curve.predict(conf[idx]).mean()), np.nan, np.nan, np.nan


def run_ours(task: tuple[int, int, str]) -> tuple[tuple[int, int, str], np.ndarray, list[str]]:
    """[reps, 5]: estimate, low, high, reliable (1/0, NaN: no flag), seconds; and the errors raised."""
    i, size, method = task
    case = CASES[i]
    rows, errors = np.full((len(WINDOWS[i, size]), 5), np.nan), []
    if method in OURS:
        from monitoring_pipeline.core.estimation import estimate_performance
    for r, idx in enumerate(WINDOWS[i, size]):
        started = time.perf_counter()
        if method == "raw conf":
            rows[r, :4] = raw_confidence(case, idx)
        elif method == "oracle":
            rows[r, :4] = oracle(case, GROUPS[i, size][r], idx)
        else:
            try:
                result = estimate_performance(case.reference, current_of(case, idx), method=method,
                                              metrics=("accuracy",), seed=r)
            except Exception as err:  # noqa: BLE001  counted and printed: a failure is a finding, never a number
                errors.append(f"{case.name} {size} rep {r}: {type(err).__name__}: {err}")
                continue
            acc = result["accuracy"]
            if acc["estimate"] is None:
                errors.append(f"{case.name} {size} rep {r}: no estimate ({acc.get('reason', '')})")
                continue
            rows[r, :4] = (acc["estimate"], acc["low"], acc["high"], bool(acc["reliable"] and result["reliable"]))
        rows[r, 4] = time.perf_counter() - started
    return task, rows, errors


def peer_python() -> tuple[Path | None, str]:
    """NannyML's interpreter (the venv is created and filled on the first run), or None and pip's error."""
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        if subprocess.run([python, "-c", "import nannyml"], capture_output=True, check=False).returncode == 0:
            return python, "found"
    print(f"creating {PEER_VENV} and installing {' '.join(PEER_REQUIREMENTS)} ...",
          flush=True)
    made = subprocess.run([sys.executable, "-m", "venv", PEER_VENV], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return None, f"python -m venv failed: {made.stderr.strip()[-2000:]}"
    pip = subprocess.run([python, "-m", "pip", "install", "-q", *PEER_REQUIREMENTS], capture_output=True, text=True,
                         check=False)
    errors = "\n".join(line for line in pip.stderr.splitlines() if "is ignored" not in line)
    if pip.returncode != 0:
        return None, f"pip install {' '.join(PEER_REQUIREMENTS)} failed (exit {pip.returncode}):\n{errors[-3000:]}"
    return python, "installed now"


def run_peer(cases: list[Case], windows: dict) -> tuple[dict, dict | None, str]:
    """NannyML's [reps, 4] per (case, size) from its worker, its JSON report, and a note."""
    python, note = peer_python()
    if python is None:
        return {}, None, note
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "windows.npz", Path(tmp) / "estimates.npz"
        arrays = {}
        for i, case in enumerate(cases):
            arrays.update({f"case{i}_ref_true": case.reference["y_true"], f"case{i}_ref_pred": case.reference["y_pred"],
                           f"case{i}_ref_score": case.reference["y_score"], f"case{i}_pool_pred": case.pool["y_pred"],
                           f"case{i}_pool_score": case.pool["y_score"]})
        arrays.update({f"case{i}_size{size}": np.stack(idx) for (i, size), idx in windows.items()})
        np.savez(source, **arrays)
        done = subprocess.run([python, WORKER, source, target], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return {}, None, f"the NannyML worker failed (exit {done.returncode}):\n{done.stderr.strip()[-3000:]}"
        report = json.loads(done.stdout.strip().splitlines()[-1])
        with np.load(target) as out:
            estimates = {(i, size): out[f"case{i}_size{size}"] for (i, size) in windows}
    return estimates, report, note


def summary(rows: list[np.ndarray], realized: list[np.ndarray]) -> dict:
    """MAE, coverage, unreliable share, MAE over reliable windows, seconds, answered windows."""
    rows, truth = np.concatenate(rows), np.concatenate(realized)
    ok = np.isfinite(rows[:, 0])
    rows, truth = rows[ok], truth[ok]
    if not ok.any():
        return {"n": 0}
    err = np.abs(rows[:, 0] - truth)
    flagged = rows[:, 3] if rows.shape[1] > 4 else np.full(len(rows), np.nan)
    reliable = flagged == 1
    return {"n": int(ok.sum()), "missing": int((~ok).sum()), "mae": float(err.mean()),
            "cover": float(np.mean((rows[:, 1] <= truth) & (truth <= rows[:, 2])))
            if np.isfinite(rows[:, 1]).any() else None,
            "unrel": float(np.mean(flagged == 0)) if np.isfinite(flagged).all() else None,
            "mae_rel": float(err[reliable].mean()) if reliable.any() else None,
            "seconds": float(np.nanmean(rows[:, -1]))}


def cells(s: dict) -> str:
    if s.get("n", 0) == 0:
        return f"{'not run':>6} | {'':>5} | {'':>5} | {'':>7} | {'':>6}"
    unrel = "-" if s["unrel"] is None else f"{s['unrel']:.0%}"
    mae_rel = "-" if s["mae_rel"] is None else f"{s['mae_rel']:.3f}"
    missing = f" ({s['missing']} failed)" if s["missing"] else ""
    cover = "-" if s["cover"] is None else f"{s['cover']:.0%}"
    return f"{s['mae']:>6.3f} | {cover:>5} | {unrel:>5} | {mae_rel:>7} | {s['seconds']:>6.3f}{missing}"


def target_line(family: str, keys: list, results: dict, realized: dict) -> str:
    """Our better method against NannyML on the same windows of one family, and the verdict."""
    def stacked(m):
        return np.concatenate([results[i, size, m][:, 0] for i, size in keys])

    if not keys or any((i, size, "nannyml") not in results for i, size in keys):
        return f"{family:>{FW}}: not compared (NannyML did not run)"
    ours = [m for m in OURS if all((i, size, m) in results for i, size in keys)]
    if not ours:
        return f"{family:>{FW}}: not compared (our methods did not run)"
    truth, peer = np.concatenate([realized[k] for k in keys]), stacked("nannyml")
    both = np.isfinite(peer) & np.all([np.isfinite(stacked(m)) for m in ours], axis=0)
    mae = {m: float(np.abs(stacked(m) - truth)[both].mean()) for m in ours}
    best = min(mae, key=mae.get)
    peer_mae = float(np.abs(peer - truth)[both].mean())
    limit = 0.5 if family in COVARIATE else 1.0
    ratio = mae[best] / peer_mae
    reliable = both & (np.concatenate([results[i, size, best][:, 3] for i, size in keys]) == 1)
    if reliable.any():
        flagged = (f"; ours calls {reliable.sum()} of {both.sum()} reliable, MAE there "
                   f"{np.abs(stacked(best) - truth)[reliable].mean():.3f} vs NannyML "
                   f"{np.abs(peer - truth)[reliable].mean():.3f}")
    else:
        flagged = f"; ours calls none of {both.sum()} reliable"
    floor = ""
    if all((i, size, "oracle") in results for i, size in keys):
        bound = float(np.abs(stacked("oracle") - truth)[both].mean())
        floor = (f"; the calibration oracle's MAE {bound:.3f} ({bound / peer_mae:.2f} of NannyML's"
                 f"{', so the target is below what any calibration of the scores reaches' if bound > limit * peer_mae else ''})")
    return (f"{family:>{FW}}: ours ({best}) MAE {mae[best]:.3f} vs NannyML {peer_mae:.3f}: ratio {ratio:.2f}, "
            f"target <= {limit:g}: {'met' if ratio <= limit else 'MISSED'}{flagged}{floor}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 windows per case and size (a smoke run)")
    parser.add_argument("--reps", type=int, default=60, help="windows per case and size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    args = parser.parse_args()
    reps = 5 if args.quick else args.reps
    started = time.perf_counter()
    CASES.extend(c for c in all_cases() if c.family in args.families)
    windows, pools = draw_windows(CASES, args.sizes, reps)
    WINDOWS.update(windows)
    realized = {key: np.array([float(np.mean(CASES[key[0]].pool["y_true"][idx] == CASES[key[0]].pool["y_pred"][idx]))
                               for idx in idx_list]) for key, idx_list in windows.items()}
    print(f"{len(CASES)} cases, sizes {args.sizes}, {reps} windows each; models and windows ready in "
          f"{time.perf_counter() - started:.0f} s", flush=True)

    results: dict[tuple[int, int, str], np.ndarray] = {}
    if "nannyml" in args.methods:
        peer, report, note = run_peer(CASES, windows)
        if report is None:
            print(f"NannyML NOT RUN: {note}")
        else:
            ours = {m: __import__(m).__version__ for m in ("numpy", "pandas", "sklearn")}
            same = ours["numpy"] == report["numpy"] and ours["pandas"] == report["pandas"] \
                and ours["sklearn"] == report["scikit-learn"]
            print(f"NannyML {report['nannyml']} ran in a separate venv ({PEER_VENV}, "
                  f"{note}; python {report['python']}, numpy {report['numpy']}, pandas {report['pandas']}, "
                  f"scikit-learn {report['scikit-learn']}: {'the same' if same else 'NOT the same'} versions as ours). "
                  "Why apart: it is no dependency of the project and brings its own (cloud-storage SDKs, lightgbm, "
                  "xgboost, plotly) plus statsmodels, which it imports without declaring.")
            print(f"NannyML fit seconds per reference: "
                  f"{', '.join(f'{s:.2f}' for s in report['fit_seconds'].values())}; failed windows: "
                  f"{report['failures']}{' (first: ' + report['first_error'] + ')' if report['failures'] else ''}")
            results.update({(i, size, "nannyml"): rows for (i, size), rows in peer.items()})

    tasks = sorted(((i, size, m) for i in range(len(CASES)) for size in args.sizes for m in args.methods
                    if m != "nannyml"), key=lambda t: (-t[1], t[2] != "pape"))
    errors: list[str] = []
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for task, rows, errs in pool.map(run_ours, tasks):
            results[task] = rows
            errors += errs
    if errors:
        print(f"{len(errors)} estimates raised or returned none; first: {errors[0]}")

    methods = [m for m in METHODS if m in args.methods]
    noise = {(i, size): sampling_noise(acc, size, pools[i, size]) for (i, size), acc in realized.items()}
    head = (f"{'noise':>5} | {'method':>8} | {'MAE':>6} | {'cover':>5} | {'unrel':>5} | {'MAE rel':>7} | "
            f"{'s/est':>6}")
    print(f"\n{'family':>{FW}} | {'case':>25} | {'rows':>4} | {'repl':>4} | {'acc':>5} | {head}")
    for i, case in enumerate(CASES):
        for size in args.sizes:
            for m in methods:
                s = summary([results[i, size, m]], [realized[i, size]]) if (i, size, m) in results else {}
                repl = np.mean(~np.isnan(pools[i, size]))
                print(f"{case.family:>{FW}} | {case.name:>25} | {size:>4} | {repl:>4.0%} | "
                      f"{realized[i, size].mean():>5.3f} | {noise[i, size].mean():>5.3f} | {m:>8} | {cells(s)}")

    print(f"\n{'family':>{FW}} | {'rows':>4} | {'n':>4} | {head}")
    families = [f for f in FAMILIES if f in args.families]
    for family in families:
        members = [i for i, c in enumerate(CASES) if c.family == family]
        for size in [*args.sizes, "all"]:
            keys = [(i, s) for i in members for s in (args.sizes if size == "all" else [size])]
            low = np.concatenate([noise[k] for k in keys]).mean()
            for m in methods:
                have = [k for k in keys if (*k, m) in results]
                s = summary([results[(k[0], k[1], m)] for k in have], [realized[k] for k in have]) if have else {}
                print(f"{family:>{FW}} | {size:>4} | {s.get('n', 0):>4} | {low:>5.3f} | {m:>8} | {cells(s)}")

    print("\nTarget (issue 13): our better method's MAE at most NannyML's on every family, at most half of it "
          "under covariate shift (windows both answered; 'flagged' compares the windows ours calls reliable)")
    for family in families:
        keys = [(i, size) for i, c in enumerate(CASES) if c.family == family for size in args.sizes]
        print(target_line(family, keys, results, realized))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
