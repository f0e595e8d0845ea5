"""NannyML's CBPE on the windows of benchmarks/estimation.py; runs in NannyML's own virtual environment.

    <venv>/bin/python benchmarks/estimation_nannyml_worker.py windows.npz estimates.npz

Reads, per case ``i``, the estimation reference (``case{i}_ref_true``, ``_ref_pred``,
``_ref_score``: positive-class probability [n] or class probabilities [n, k]), the pool's
outputs (``case{i}_pool_pred``, ``_pool_score``) and the windows as pool indices
(``case{i}_size{s}``: [reps, s]). Fits one ``nannyml.CBPE`` (accuracy, its default
isotonic calibration) per case on the reference and estimates each window as one chunk.
Writes ``case{i}_size{s}``: [reps, 4] = estimated accuracy, NannyML's lower and upper
confidence boundary (its value -+ 3 sampling errors, clipped to [0, 1]) and the seconds
of the estimate call; a window NannyML fails on is NaN, and its error is counted.
Prints one JSON line: versions, fit seconds per case, failures and the first error.
Imports nothing of monitoring_pipeline: only numpy, pandas and nannyml.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
import pandas as pd


def _frame(pred: np.ndarray, score: np.ndarray, true: np.ndarray | None = None) -> pd.DataFrame:
    columns = {"y_pred": pred}
    if score.ndim == 1:
        columns["p"] = score
    else:
        columns.update({f"p{c}": score[:, c] for c in range(score.shape[1])})
    if true is not None:
        columns["y_true"] = true
    return pd.DataFrame(columns)


def main() -> None:
    import nannyml
    import sklearn

    source, target = sys.argv[1], sys.argv[2]
    data = np.load(source)
    cases = sorted({int(k.split("_")[0][4:]) for k in data.files})
    out, fit_seconds, failures, first_error = {}, {}, 0, ""
    warnings.simplefilter("ignore")  # "the resulting number of chunks is too low": one chunk is the point
    for i in cases:
        score = data[f"case{i}_ref_score"]
        binary = score.ndim == 1
        proba = "p" if binary else {c: f"p{c}" for c in range(score.shape[1])}
        estimator = nannyml.CBPE(y_pred_proba=proba, y_pred="y_pred", y_true="y_true", metrics=["accuracy"],
                                 problem_type="classification_binary" if binary else "classification_multiclass",
                                 chunk_number=1)
        started = time.perf_counter()
        estimator.fit(_frame(data[f"case{i}_ref_pred"], score, data[f"case{i}_ref_true"]))
        fit_seconds[i] = time.perf_counter() - started
        pool_pred, pool_score = data[f"case{i}_pool_pred"], data[f"case{i}_pool_score"]
        for key in (k for k in data.files if k.startswith(f"case{i}_size")):
            windows = data[key]
            rows = np.full((len(windows), 4), np.nan)
            for r, idx in enumerate(windows):
                started = time.perf_counter()
                try:
                    result = estimator.estimate(_frame(pool_pred[idx], pool_score[idx])).to_df()
                except Exception as err:  # noqa: BLE001  the peer's failure is counted and reported, never a number
                    failures += 1
                    first_error = first_error or f"{type(err).__name__}: {err}"
                    continue
                seconds = time.perf_counter() - started
                row = result[result[("chunk", "period")] == "analysis"].iloc[0]
                rows[r] = (row[("accuracy", "value")], row[("accuracy", "lower_confidence_boundary")],
                           row[("accuracy", "upper_confidence_boundary")], seconds)
            out[key] = rows
    np.savez(target, **out)
    print(json.dumps({"nannyml": nannyml.__version__, "numpy": np.__version__, "pandas": pd.__version__,
                      "scikit-learn": sklearn.__version__, "python": sys.version.split()[0],
                      "fit_seconds": fit_seconds, "failures": failures, "first_error": first_error}))


if __name__ == "__main__":
    main()
