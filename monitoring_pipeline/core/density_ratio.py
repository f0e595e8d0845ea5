"""How much each reference row looks like the current window: density-ratio weights,
and whether the window is inside the reference's support at all.

A probabilistic classifier is trained to tell current rows (1) from reference rows (0)
with balanced class weights, so its odds estimate the density ratio
``w(x) = p_current(x) / p_reference(x)``. Weighting the reference rows by ``w`` makes
them a sample of the current inputs (importance weighting; Sugiyama et al. 2012), which
is what lets a calibration fitted on the reference hold under covariate shift (PAPE,
Bialek et al. 2024). Every row's odds come from a model fitted on other folds.

The model is a logistic regression on each column standardised and on its square
(a moved mean and a changed spread), after principal components when there are more
than ``MAX_COMPONENTS`` columns; its penalty is chosen from ``PENALTIES`` by held-out
log loss (the density-ratio fit's own likelihood).

The same fit says when no weighting can help:
- its out-of-fold AUC near 1 (``MAX_AUC``): the classifier tells almost every current
  row from every reference row, so the current inputs lie where the reference has none;
- the weights' effective sample size ``(sum w)^2 / sum w^2`` below ``MIN_ESS``: the
  reference rows that resemble the window are too few to calibrate on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from .embedding import one_thread

MAX_COMPONENTS = 32
PENALTIES = (0.001, 0.01, 0.1, 1.0)
N_FOLDS = 5
MAX_AUC = 0.95
MIN_ESS = 50.0
UNSUPPORTED_RATIO = 20.0
TOP_CATEGORIES = 20
CLIP = 4.0
_HUGE = 1e100


@dataclass(frozen=True)
class Support:
    """Density-ratio weights of the reference rows (mean 1) and what they say."""

    weights: np.ndarray
    domain_auc: float
    ess: float
    penalty: float
    current_ratios: np.ndarray | None = None  # each current row's out-of-fold density ratio

    @property
    def unsupported(self) -> np.ndarray:
        """Current rows where the reference has under 1 / ``UNSUPPORTED_RATIO`` of the
        window's density: what the reference says of them is an extrapolation."""
        return self.current_ratios > UNSUPPORTED_RATIO

    @property
    def ess_share(self) -> float:
        return self.ess / self.weights.size

    def problem(self) -> str:
        """Why the current inputs are outside the reference's support; "" when they are not."""
        if self.domain_auc >= MAX_AUC:
            return (f"inputs outside the reference: a classifier tells the window's inputs from the reference's "
                    f"with AUC {self.domain_auc:.3f}")
        if self.ess < MIN_ESS:
            return (f"inputs outside the reference: the reference rows like the window's weigh as "
                    f"{self.ess:.0f} rows (effective sample size of {self.weights.size}), too few to calibrate on")
        return ""

    def to_dict(self) -> dict:
        out = {"domain_auc": self.domain_auc, "ess": self.ess, "ess_share": self.ess_share, "penalty": self.penalty}
        if self.current_ratios is not None:
            out["unsupported_share"] = float(self.unsupported.mean())
        return out


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)


def encode_inputs(ref_x, cur_x) -> tuple[np.ndarray, np.ndarray]:
    """Both sides as float matrices on the reference's terms: numbers as they are, a
    missing or infinite value as the reference median plus a missing-indicator column,
    a categorical column one-hot over its ``TOP_CATEGORIES`` most common reference
    values (anything else in an "other" column)."""
    if isinstance(ref_x, pd.DataFrame) or isinstance(cur_x, pd.DataFrame):
        ref = ref_x if isinstance(ref_x, pd.DataFrame) else pd.DataFrame(np.asarray(ref_x))
        cur = cur_x if isinstance(cur_x, pd.DataFrame) else pd.DataFrame(np.asarray(cur_x))
        ref, cur = ref.rename(columns=str), cur.rename(columns=str)
        missing = [c for c in ref.columns if c not in cur.columns]
        if missing:
            raise ValueError(f"current inputs lack the reference's columns: {', '.join(missing[:10])}")
        cur = cur[list(ref.columns)]
    else:
        ref, cur = pd.DataFrame(_matrix(ref_x, "reference")), pd.DataFrame(_matrix(cur_x, "current"))
        if ref.shape[1] != cur.shape[1]:
            raise ValueError(f"reference inputs have {ref.shape[1]} columns and current inputs {cur.shape[1]}")
    ref_cols, cur_cols = [], []
    for col in ref.columns:
        r, c = ref[col], cur[col]
        if _numeric(r):
            rv = r.to_numpy(dtype=np.float64, na_value=np.nan)
            cv = pd.to_numeric(c, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            rv, cv = np.where(np.isfinite(rv), rv, np.nan), np.where(np.isfinite(cv), cv, np.nan)
            if max(np.nanmax(np.abs(rv), initial=0.0), np.nanmax(np.abs(cv), initial=0.0)) > _HUGE:
                # squares of values near the float limit overflow: keep their order, not their scale
                rv, cv = np.sign(rv) * np.log1p(np.abs(rv)), np.sign(cv) * np.log1p(np.abs(cv))
            fill = float(np.nanmedian(rv)) if np.isfinite(rv).any() else 0.0
            ref_cols.append(np.where(np.isnan(rv), fill, rv))
            cur_cols.append(np.where(np.isnan(cv), fill, cv))
            if np.isnan(rv).any() or np.isnan(cv).any():
                ref_cols.append(np.isnan(rv).astype(np.float64))
                cur_cols.append(np.isnan(cv).astype(np.float64))
        else:
            rs, cs = r.astype(object).where(r.notna(), "<missing>").astype(str), \
                c.astype(object).where(c.notna(), "<missing>").astype(str)
            top = rs.value_counts().index[:TOP_CATEGORIES]
            for value in top:
                ref_cols.append((rs == value).to_numpy(np.float64))
                cur_cols.append((cs == value).to_numpy(np.float64))
            ref_cols.append((~rs.isin(top)).to_numpy(np.float64))
            cur_cols.append((~cs.isin(top)).to_numpy(np.float64))
    if not ref_cols:
        raise ValueError("the inputs have no columns")
    return np.column_stack(ref_cols), np.column_stack(cur_cols)


def _matrix(x, side: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{side} inputs must be [rows, columns]; got shape {a.shape}")
    return a


def _design(fit: np.ndarray, *rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` on the terms of the rows ``fit``: standardised columns (principal components
    past ``MAX_COMPONENTS``) and their squares. ``fit`` is a fold's training rows, both
    sides: whitening makes the rows it was fitted on smaller in its squares than any other
    row, so it must treat the two classes alike and never see the held-out rows (fitted on
    every reference row, two samples of one law in 256 columns parted with an AUC of 0.99;
    on the training fold's reference rows only, its held-out rows looked current)."""
    mu, sd = fit.mean(axis=0), fit.std(axis=0)
    keep = sd > 0
    if not keep.any():  # every column constant in the reference: only a different value tells
        keep, sd = np.ones_like(keep), np.ones_like(sd)
    a = (fit[:, keep] - mu[keep]) / sd[keep]
    out = [(r[:, keep] - mu[keep]) / sd[keep] for r in rows]
    if a.shape[1] > MAX_COMPONENTS:
        with one_thread():
            _, values, vt = np.linalg.svd(a - a.mean(axis=0), full_matrices=False)
        scale = values[:MAX_COMPONENTS] / np.sqrt(max(a.shape[0] - 1, 1))
        scale[scale == 0] = 1.0
        basis = vt[:MAX_COMPONENTS].T / scale
        a, out = a @ basis, [r @ basis for r in out]
    # A value far out in a column nearly constant (a corner pixel, a rare flag) would give its
    # row an odds ratio in the thousands: coordinates are clipped at CLIP standard deviations.
    a, out = np.clip(a, -CLIP, CLIP), [np.clip(r, -CLIP, CLIP) for r in out]
    a2 = a * a
    m2, s2 = a2.mean(axis=0), a2.std(axis=0)
    s2[s2 == 0] = 1.0
    return [np.hstack([r, (r * r - m2) / s2]) for r in out]


def estimate_support(ref_x, cur_x, *, seed: int = 0) -> Support:
    """Cross-fitted density-ratio weights of the reference rows and the domain AUC."""
    ref_raw, cur_raw = encode_inputs(ref_x, cur_x)
    n, m = ref_raw.shape[0], cur_raw.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"density ratios need at least 2 rows a side; got {n} reference and {m} current")
    raw = np.vstack([ref_raw, cur_raw])
    y = np.concatenate([np.zeros(n, dtype=int), np.ones(m, dtype=int)])
    k = min(N_FOLDS, m, n)
    folds = []
    for train, test in StratifiedKFold(k, shuffle=True, random_state=seed).split(raw, y):
        fit = raw[train]
        folds.append((train, test, *_design(fit, raw[train], raw[test])))
    best = None
    with one_thread():
        for c in PENALTIES:
            logits = np.empty(n + m)
            for train, test, x_train, x_test in folds:
                model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
                model.fit(x_train, y[train])
                logits[test] = model.decision_function(x_test)
            # held-out log loss with the classes weighted equally, as the fit weighs them
            p = 1 / (1 + np.exp(-np.clip(logits, -30, 30)))
            balance = np.where(y == 1, n / m, 1.0)
            loss = log_loss(y, p, sample_weight=balance, labels=[0, 1])
            if best is None or loss < best[0] - 1e-12:
                best = (loss, c, logits)
    _, penalty, logits = best
    weights = np.exp(np.clip(logits[:n], -30, 30))
    weights = weights / weights.mean()
    ess = float(weights.sum() ** 2 / np.sum(weights ** 2))
    auc = float(roc_auc_score(y, logits))
    return Support(weights, auc, ess, penalty, np.exp(np.clip(logits[n:], -30, 30)))
