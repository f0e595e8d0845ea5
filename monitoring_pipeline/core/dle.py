"""A regression model's error estimated without labels (direct loss estimation, as
NannyML's DLE).

On the labeled reference, a "nanny" model learns each row's absolute error ``|y - f|``
and squared error ``(y - f)^2`` from the inputs and the monitored model's prediction
``f``. On a window it predicts both for every row: the estimated MAE is the mean
predicted absolute error, the estimated RMSE the root of the mean predicted squared
error. With ``weighted`` the reference rows carry density-ratio weights towards the
window (:mod:`.density_ratio`), as PAPE does for classification.

**Interval** (for the realized value, level ``1 - alpha``): ``N_BOOT`` nanny models fitted
on bootstrap resamples of the reference give the fit's uncertainty; around each, the
window's own sampling error is drawn as a normal with the variance the nanny predicts:
``Var |e| = E e^2 - (E|e|)^2`` per row, and ``Var e^2 = (kappa - 1) (E e^2)^2`` with the
reference's kurtosis ``kappa`` of the errors scaled by their predicted size.

**Reliability** as for classification: too few reference rows, or current inputs the
reference does not support.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from .density_ratio import encode_inputs, estimate_support
from .embedding import one_thread

N_BOOT = 20
MIN_REFERENCE = 50
NANNY = dict(max_iter=60, learning_rate=0.1, min_samples_leaf=20, max_leaf_nodes=15)


def _floats(side: dict, key: str, name: str) -> np.ndarray:
    if side.get(key) is None:
        raise ValueError(f"{name} needs '{key}'")
    a = pd.to_numeric(pd.Series(np.asarray(side[key]).ravel()), errors="coerce").to_numpy(np.float64)
    return a


def _nanny(x: np.ndarray, target: np.ndarray, w: np.ndarray | None, seed: int) -> HistGradientBoostingRegressor:
    """A nanny model; the caller runs it under ``one_thread`` (OpenMP threads on small fits
    only contend on a busy machine)."""
    return HistGradientBoostingRegressor(random_state=seed, **NANNY).fit(x, target, sample_weight=w)


def estimate_regression(reference: dict, current: dict, *, weighted: bool = False, metrics=("mae", "rmse"),
                        seed: int = 0, alpha: float = 0.05) -> dict:
    """Estimated MAE and RMSE of the window; the entries as ``estimate_performance``'s."""
    unknown = [m for m in metrics if m not in ("mae", "rmse")]
    if unknown:
        raise ValueError(f"cannot estimate {unknown} for regression; choose from mae, rmse")
    y, f_ref, f_cur = _floats(reference, "y_true", "reference"), _floats(reference, "y_pred", "reference"), \
        _floats(current, "y_pred", "current")
    if y.size != f_ref.size:
        raise ValueError(f"reference y_true and y_pred must have one length; got {y.size} and {f_ref.size}")
    ref_x, cur_x = reference.get("X"), current.get("X")
    if weighted and (ref_x is None or cur_x is None):
        raise ValueError("method 'pape' needs the inputs 'X' of both the reference and the current rows")
    for side, x, f in (("reference", ref_x, f_ref), ("current", cur_x, f_cur)):
        if x is not None and len(x) != f.size:
            raise ValueError(f"{side} X has {len(x)} rows for {f.size} predictions")
    keep_ref, keep_cur = np.isfinite(y) & np.isfinite(f_ref), np.isfinite(f_cur)
    if keep_cur.sum() == 0:
        raise ValueError("no current rows with a finite prediction to estimate from")
    if keep_ref.sum() < 2:
        raise ValueError("the reference needs at least 2 rows with a finite label and prediction")
    take = lambda x, keep: None if x is None else (  # noqa: E731
        x.iloc[np.flatnonzero(keep)].reset_index(drop=True) if isinstance(x, pd.DataFrame) else np.asarray(x)[keep])
    ref_x, cur_x = take(ref_x, keep_ref), take(cur_x, keep_cur)
    y, f_ref, f_cur = y[keep_ref], f_ref[keep_ref], f_cur[keep_cur]
    if ref_x is not None and cur_x is not None:
        a, b = encode_inputs(ref_x, cur_x)
        a, b = np.column_stack([a, f_ref]), np.column_stack([b, f_cur])
    else:
        a, b = f_ref[:, None], f_cur[:, None]
    support = None
    if ref_x is not None and cur_x is not None and f_cur.size >= 5:
        support = estimate_support(ref_x, cur_x, seed=seed)
    w = support.weights if (weighted and support is not None) else None
    err = y - f_ref
    abs_err, sq_err = np.abs(err), err * err
    n, m = y.size, f_cur.size
    rng = np.random.default_rng(seed)

    def fit(rows) -> tuple[HistGradientBoostingRegressor, HistGradientBoostingRegressor]:
        wb = None if w is None else w[rows]
        with one_thread():
            return _nanny(a[rows], abs_err[rows], wb, seed), _nanny(a[rows], sq_err[rows], wb, seed)

    def predict(models) -> tuple[np.ndarray, np.ndarray]:
        with one_thread():
            abs_hat = np.maximum(models[0].predict(b), 0.0)
            return abs_hat, np.maximum(models[1].predict(b), abs_hat ** 2)

    full = fit(np.arange(n))
    abs_hat, sq_hat = predict(full)
    # the kurtosis of the errors scaled by their predicted size, on the reference
    with one_thread():
        scale_ref = np.maximum(full[1].predict(a), 1e-12)
    kappa = float(np.average(sq_err ** 2 / scale_ref ** 2, weights=w)) if np.any(sq_err > 0) else 1.0
    kappa = max(kappa, 1.0)
    draws = {"mae": [], "rmse": []}
    for _ in range(N_BOOT):
        ab, sb = predict(fit(rng.integers(0, n, n)))
        sd_abs = np.sqrt(np.sum(np.maximum(sb - ab ** 2, 0.0))) / m
        sd_sq = np.sqrt(np.sum((kappa - 1) * sb ** 2)) / m
        draws["mae"].extend(ab.mean() + sd_abs * rng.standard_normal(10))
        draws["rmse"].extend(np.sqrt(np.maximum(sb.mean() + sd_sq * rng.standard_normal(10), 0.0)))
    reason = ""
    if n < MIN_REFERENCE:
        reason = f"the error model rests on {n} labeled reference rows; at least {MIN_REFERENCE} are needed"
    elif support is not None and support.problem():
        reason = support.problem()
    method = "pape" if weighted else "dle"
    point = {"mae": float(abs_hat.mean()), "rmse": float(np.sqrt(sq_hat.mean()))}
    result = {}
    for name in metrics:
        low, high = np.quantile(draws[name], [alpha / 2, 1 - alpha / 2])
        result[name] = {"estimate": point[name], "low": float(low), "high": float(high), "method": method,
                        "reliable": not reason, "reason": reason}
    result.update(
        support=support.to_dict() if support is not None else {"domain_auc": None, "ess": None, "ess_share": None},
        reliable=not reason, reason=reason, method=method, task="regression", n_current=int(m), n_reference=int(n),
        n_dropped=int((~keep_cur).sum()), alpha=alpha,
        reference={"mae": float(np.average(abs_err, weights=w)), "rmse": float(np.sqrt(np.average(sq_err, weights=w)))})
    return result
