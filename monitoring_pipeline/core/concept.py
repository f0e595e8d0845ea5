"""Concept drift: has the relation between the features and the label changed?

A small random forest is fit on each period (the seed's Phase 14, task 14.3). Their
feature importances are compared (correlation, and the features that moved most),
and the reference model is scored on the current period. Input drift alone lowers
that score too; the relation has changed when, in addition, a model fit on the
current period does clearly better there than the reference model.

Each of the two signals has a permutation p-value (:mod:`.concept_permutation`), and
the verdict follows the rule of data drift (:mod:`.drift`): a signal counts only when
it is significant after Holm's correction over the two signals AND its effect passes
the practical threshold (correlation below ``min_correlation``; the reference model's
drop and the current model's lead both above ``tolerance``). Small windows then do not
raise false alarms on the sampling noise of a forest fit on a few dozen rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from .concept_permutation import check_options, permutation_test
from .stattests import holm

MIN_ROWS = 20


@dataclass(frozen=True)
class ConceptDriftResult:
    task: str
    metric: str  # accuracy for classification, R^2 for regression
    importance_correlation: float | None
    rank_correlation: float | None
    importances: list[dict]  # feature, reference, current, change; largest change first
    reference_score: float  # reference model, out-of-bag, on the reference period
    reference_on_current: float  # reference model on the current period
    current_score: float  # current model, out-of-bag, on the current period
    performance_change: float  # reference_on_current - reference_score
    drifted: bool
    severity: str
    reasons: list[str]
    # The tests (None when a statistic is undefined, e.g. importances that do not vary):
    performance_gap: float = 0.0  # current_score - reference_on_current: the current model's lead
    importance_p_value: float | None = None  # permutation p-value of a correlation this low
    performance_p_value: float | None = None  # permutation p-value of a lead this large
    importance_p_adjusted: float | None = None  # Holm over the two signals
    performance_p_adjusted: float | None = None
    alpha: float = 0.05
    n_permutations: int = 0  # permutations drawn (the test stops early on unremarkable windows)
    min_correlation: float = 0.7
    tolerance: float = 0.05

    def signals(self) -> list[dict]:
        """One row per signal, read like a data-drift feature row: "statistic" (the
        importance correlation; the reference model's change on the current period),
        "effect" against "threshold", larger meaning more drift (1 - correlation against
        1 - min_correlation; the current model's lead against the tolerance), the raw
        and Holm-adjusted p-values, and whether the signal counts ("drifted", "severity").
        The raw p-values let a report correct them together with its other tests."""
        corr = self.importance_correlation
        importance = self._importance_drifted()
        return [
            {"signal": "importance_correlation", "statistic": corr, "effect": None if corr is None else 1.0 - corr,
             "threshold": 1.0 - self.min_correlation, "p_value": self.importance_p_value,
             "p_value_adjusted": self.importance_p_adjusted, "drifted": importance,
             "severity": "warn" if importance else "ok"},
            {"signal": "performance_gap", "statistic": self.performance_change, "effect": self.performance_gap,
             "threshold": self.tolerance, "p_value": self.performance_p_value,
             "p_value_adjusted": self.performance_p_adjusted, "drifted": self.severity == "alert",
             "severity": self.severity if self.severity == "alert" else "ok"},
        ]

    def _importance_drifted(self) -> bool:
        return (self.importance_correlation is not None and self.importance_correlation < self.min_correlation
                and self.importance_p_adjusted is not None and self.importance_p_adjusted <= self.alpha)

    def to_dict(self) -> dict:
        return {**asdict(self), "signals": self.signals()}


def _frame(x, name: str) -> pd.DataFrame:
    frame = x if isinstance(x, pd.DataFrame) else pd.DataFrame(np.asarray(x))
    if len(frame) < MIN_ROWS:
        raise ValueError(f"{name} has {len(frame)} rows; concept drift needs at least {MIN_ROWS}")
    return frame.rename(columns=str)


def _encode(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as floats (inf as missing); other columns as codes over both periods' labels."""
    ref_cols, cur_cols = [], []
    for col in ref.columns:
        r, c = ref[col], cur[col]
        if pd.api.types.is_numeric_dtype(r.dtype) and not pd.api.types.is_bool_dtype(r.dtype):
            rv = r.to_numpy(dtype=np.float64, na_value=np.nan)
            cv = pd.to_numeric(c, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            # sorted, so the codes depend on the pooled values only, not on which period holds them
            labels = pd.Index(sorted(pd.concat([r, c]).dropna().astype(str).unique()))
            rv = np.where(r.isna(), np.nan, labels.get_indexer(r.astype(str))).astype(np.float64)
            cv = np.where(c.isna(), np.nan, labels.get_indexer(c.astype(str))).astype(np.float64)
        rv, cv = _fits_float32(np.where(np.isinf(rv), np.nan, rv), np.where(np.isinf(cv), np.nan, cv))
        ref_cols.append(rv)
        cur_cols.append(cv)
    return np.column_stack(ref_cols), np.column_stack(cur_cols)


_FLOAT32_SAFE = 1e37


def _fits_float32(*columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """The forests work in float32: a column beyond its range (up to +-1.8e308) goes
    through sign(x) log1p(|x|), which keeps the order of values and so every split."""
    if all(np.nanmax(np.abs(c), initial=0.0) < _FLOAT32_SAFE for c in columns):
        return columns
    return tuple(np.sign(c) * np.log1p(np.abs(c)) for c in columns)


def _task(y: np.ndarray) -> str:
    if y.dtype.kind == "f" and np.unique(y).size > 20:
        return "regression"
    return "classification"


def concept_drift(
    ref_X,
    ref_y,
    cur_X,
    cur_y,
    seed: int = 0,
    *,
    task: Literal["classification", "regression"] | None = None,
    n_estimators: int = 50,
    min_correlation: float = 0.7,
    tolerance: float = 0.05,
    alpha: float = 0.05,
    n_permutations: int = 99,
    stop_after: int = 5,
    test_estimators: int = 20,
    max_rows: int = 2_000,
) -> ConceptDriftResult:
    """Compare the feature-label relation of a reference and a current period.

    Drifted at "warn" when the importance correlation is below ``min_correlation``,
    and at "alert" when the reference model scores more than ``tolerance`` below its
    own out-of-bag score on the current period while a current model beats it there
    by more than ``tolerance``; each only when its permutation p-value, Holm-adjusted
    over the two signals, is at most ``alpha``.

    The test draws at most ``n_permutations`` permutations, each fitting a forest of
    ``test_estimators`` trees on as many rows as the current period (capped at
    ``max_rows``), and stops once both statistics have ``stop_after`` draws at least
    as extreme as the observed ones. The smallest attainable p-value is
    ``1 / (n_permutations + 1)``: raise it when the p-values join a larger correction.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    check_options(n_permutations, stop_after, max_rows)
    ref, cur = _frame(ref_X, "ref_X"), _frame(cur_X, "cur_X")
    missing = [c for c in ref.columns if c not in cur.columns]
    if missing:
        raise ValueError(f"cur_X lacks the reference's columns {missing}")
    cur = cur[list(ref.columns)]
    y_ref, y_cur = np.asarray(ref_y), np.asarray(cur_y)
    if y_ref.shape[0] != len(ref) or y_cur.shape[0] != len(cur):
        raise ValueError("each period needs one label per row")
    if pd.isna(y_ref).any() or pd.isna(y_cur).any():
        raise ValueError("labels must not be missing; drop unlabeled rows first")
    task = task or _task(y_ref)
    if task == "classification" and (np.unique(y_ref).size < 2 or np.unique(y_cur).size < 2):
        raise ValueError("concept drift on a classification task needs two classes in each period")
    x_ref, x_cur = _encode(ref, cur)
    forest = RandomForestClassifier if task == "classification" else RandomForestRegressor
    params = dict(n_estimators=n_estimators, min_samples_leaf=2, oob_score=True, random_state=seed, n_jobs=1)
    ref_model = forest(**params).fit(x_ref, y_ref)
    cur_model = forest(**params).fit(x_cur, y_cur)

    ref_imp, cur_imp = ref_model.feature_importances_, cur_model.feature_importances_
    varied = ref_imp.std() > 0 and cur_imp.std() > 0
    corr = float(np.corrcoef(ref_imp, cur_imp)[0, 1]) if varied else None
    rank = float(stats.spearmanr(ref_imp, cur_imp).statistic) if varied else None
    importances = sorted(
        ({"feature": f, "reference": float(a), "current": float(b), "change": float(b - a)}
         for f, a, b in zip(ref.columns, ref_imp, cur_imp)),
        key=lambda row: -abs(row["change"]))

    reference_score = float(ref_model.oob_score_)
    on_current = float(ref_model.score(x_cur, y_cur))
    current_score = float(cur_model.oob_score_)

    test = permutation_test(x_ref, y_ref, x_cur, y_cur, task=task, seed=seed, n_permutations=n_permutations,
                            stop_after=stop_after, n_estimators=n_estimators, test_estimators=test_estimators,
                            max_rows=max_rows)
    raw = [test.importance_p_value, test.performance_p_value]
    tested = [k for k, p in enumerate(raw) if p is not None]
    adjusted: list[float | None] = [None, None]
    for k, p in zip(tested, holm(np.array([raw[k] for k in tested]))):
        adjusted[k] = float(p)
    significant = [p is not None and p <= alpha for p in adjusted]

    reasons = []
    changed = corr is not None and corr < min_correlation and significant[0]
    if changed:
        moved = ", ".join(f"{r['feature']} ({r['change']:+.2f})" for r in importances[:3])
        reasons.append(f"feature importances changed (correlation {corr:.2f} < {min_correlation}, "
                       f"p = {adjusted[0]:.2g} after Holm): {moved}")
    broken = (reference_score - on_current > tolerance and current_score - on_current > tolerance
              and significant[1])
    if broken:
        reasons.append(f"the reference model scores {on_current:.3f} on the current period "
                       f"(vs {reference_score:.3f} on its own) while a current model reaches {current_score:.3f} "
                       f"(p = {adjusted[1]:.2g} after Holm)")
    return ConceptDriftResult(
        task=task, metric="accuracy" if task == "classification" else "r2",
        importance_correlation=corr, rank_correlation=rank, importances=importances,
        reference_score=reference_score, reference_on_current=on_current, current_score=current_score,
        performance_change=on_current - reference_score, drifted=bool(reasons),
        severity="alert" if broken else ("warn" if reasons else "ok"), reasons=reasons,
        performance_gap=current_score - on_current, importance_p_value=raw[0], performance_p_value=raw[1],
        importance_p_adjusted=adjusted[0], performance_p_adjusted=adjusted[1], alpha=alpha,
        n_permutations=test.n_permutations, min_correlation=min_correlation, tolerance=tolerance)


# Options for images (pixels pooled by image_features). Without a test, importances of
# pooled pixels decorrelated below 0.7 in 10% of unchanged 60-image windows, so the
# importance signal was switched off for images; with the permutation test both signals
# hold their level on images too (benchmarks/concept_calibration.py), so none is needed.
IMAGE_OPTIONS: dict = {}


def image_features(images, grid: int = 8) -> pd.DataFrame:
    """Images [N, C, H, W] as tabular features for :func:`concept_drift`: each channel
    average-pooled to at most ``grid`` x ``grid`` cells (an 8x8 digit stays as it is),
    named ``ch{channel}_r{row}_c{column}``."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or 0 in x.shape:
        raise ValueError(f"images must be a non-empty [N, C, H, W] array, got shape {x.shape}")
    n, c, h, w = x.shape
    gh, gw = min(grid, h), min(grid, w)
    rows, cols = np.array_split(np.arange(h), gh), np.array_split(np.arange(w), gw)
    pooled = np.stack([x[:, :, r][:, :, :, k].mean(axis=(2, 3)) for r in rows for k in cols], axis=2)
    names = [f"ch{ch}_r{i}_c{j}" for ch in range(c) for i in range(gh) for j in range(gw)]
    return pd.DataFrame(pooled.reshape(n, c * gh * gw), columns=names)
