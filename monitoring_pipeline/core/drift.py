"""Drift verdicts: compare a window's profile with the reference profile.

The verdict rule: a feature is drifted only when its shift is statistically
significant after a multiple-testing correction across all the report's features
(Holm by default, Benjamini-Hochberg as an option) AND its effect size reaches the
method's threshold. Significance keeps small windows from raising false alarms;
the effect size keeps huge windows from alerting on trivial shifts. A drifted
feature is "alert" above the method's alert threshold and "warn" otherwise, and the
report's status is its worst feature's severity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .embedding import embedding_test, mean_distance
from .methods import DEFAULT_METHODS, METHODS, DriftMethod, FeaturePair, jensenshannon
from .noise import corrected, noise_floor
from .text_effects import token_details
from .columns import dtype_family
from .profiles import DatasetProfile
from .rounding import fmt_sig
from .timestamps import time_cells
from .stattests import CORRECTIONS, SignificanceResult, chi2_per_document, chi2_two_sample, ks_binned, welch_t

SEVERITY_ORDER = {"ok": 0, "warn": 1, "alert": 2}
_STATUS_SCHEMA = {"dtype_changed", "kind_mismatch"}  # schema findings that grade the report's status


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _resolve_methods(thresholds: Mapping | None):
    """A chooser (name, kind) -> (method, threshold, alert) from the ``thresholds`` option.

    Keys are feature names or kinds (numeric, categorical, tokens, channel); values
    are a method name, a threshold for the default method, or a dict with any of
    "method", "threshold" and "alert". A feature's own entry wins over its kind's.
    """
    overrides = dict(thresholds or {})
    for key, spec in overrides.items():
        if isinstance(spec, str):
            spec = {"method": spec}
        elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
            spec = {"threshold": float(spec)}
        elif not isinstance(spec, Mapping):
            raise ValueError(f"thresholds[{key!r}] must be a method name, a number or a dict")
        unknown = set(spec) - {"method", "threshold", "alert"}
        if unknown:
            raise ValueError(f"thresholds[{key!r}] has unknown keys {sorted(unknown)}")
        if "method" in spec and spec["method"] not in METHODS:
            raise ValueError(f"unknown drift method {spec['method']!r}; known: {', '.join(METHODS)}")
        overrides[key] = spec

    def choose(name: str, kind: str) -> tuple[DriftMethod, float, float]:
        spec = overrides.get(name, overrides.get(kind, {}))
        method = METHODS[spec.get("method", DEFAULT_METHODS[kind])]
        if kind not in method.kinds:
            raise ValueError(f"drift method {method.name!r} does not apply to {kind} feature {name!r}")
        threshold = float(spec.get("threshold", method.threshold))
        alert = float(spec.get("alert", max(threshold, method.alert)))
        if threshold < 0 or alert < threshold:
            raise ValueError(f"feature {name!r}: need 0 <= threshold <= alert, got {threshold}, {alert}")
        return method, threshold, alert

    return choose


def _significance(pair: FeaturePair, method: DriftMethod, rng, n_permutations: int) -> SignificanceResult | None:
    if method.name == "domain_classifier":  # the classifier the effect size was read from
        result = pair.domain_classifier
        return None if result is None else result.significance()
    if pair.kind == "embedding":
        return embedding_test(pair.ref, pair.cur, rng, n_permutations)
    if pair.kind == "channel":
        return welch_t(pair.ref.per_image.moments, pair.cur.per_image.moments)
    if pair.kind == "numeric" and method.name != "chisquare":
        return ks_binned(pair.ref, pair.cur)
    if pair.kind == "tokens":
        return _document_test(pair, rng, n_permutations)
    r, c = pair.counts
    return chi2_two_sample(r, c, rng, n_permutations)


def _document_test(pair: FeaturePair, rng, n_permutations: int) -> SignificanceResult:
    """Tokens are tested with the document as the unit: the embedding test (see
    :mod:`.embedding`) on each document's hashed bag of words. Profiles stored before
    documents were embedded fall back to the chi-square of token counts divided by the
    mean document length, which is conservative."""
    a, b = pair.ref.documents, pair.cur.documents
    if a is not None and b is not None and a.basis.fingerprint() == b.basis.fingerprint():
        test = embedding_test(a, b, rng, n_permutations)
        return SignificanceResult(f"documents_{test.test}", test.statistic, test.p_value)
    r, c = pair.counts
    docs = pair.ref.n_docs + pair.cur.n_docs
    return chi2_per_document(r, c, (pair.ref.n_tokens + pair.cur.n_tokens) / max(1, docs))


def _n_valid(summary) -> int:
    if summary.kind == "numeric":
        return summary.moments.count
    if summary.kind == "channel":
        return summary.per_image.moments.count
    if summary.kind == "tokens":
        return summary.n_tokens
    return summary.n_valid  # categorical, datetime, embedding


def _details(pair: FeaturePair) -> dict:
    ref, cur = pair.ref, pair.cur
    if pair.kind in ("numeric", "channel"):
        nr, nc = pair.numeric()
        out = {"ref_mean": nr.moments.mean, "cur_mean": nc.moments.mean,
               "ref_std": nr.moments.std, "cur_std": nc.moments.std,
               "missing_share_ref": nr.missing_share, "missing_share_cur": nc.missing_share,
               "infinite_cur": nc.n_infinite, "infinite_share_cur": nc.infinite_share,
               "out_of_range_share": nc.out_of_range / nc.moments.count if nc.moments.count else 0.0}
        if pair.kind == "channel":
            out.update(ref_pixel_mean=ref.pixels.mean, cur_pixel_mean=cur.pixels.mean)
        return out
    if pair.kind == "categorical":
        known = ref.labels()
        new = [(label, c) for label, c in cur.counts if label not in known]
        unseen = sum(c for _, c in new) + (cur.other if not ref.other else 0)
        return {"missing_share_ref": ref.missing_share, "missing_share_cur": cur.missing_share,
                "new_category_share": unseen / cur.n_valid if cur.n_valid else 0.0,
                "new_categories": [label for label, _ in new[:5]],
                "reference_tail_folded": ref.other > 0}
    if pair.kind == "embedding":
        md = mean_distance(ref, cur)
        return {"missing_share_ref": ref.missing_share, "missing_share_cur": cur.missing_share,
                "dimensions": ref.basis.dim, "test_features": md.rank,
                "tested_on": "every current row" if cur.whole else "sums of the rows (analytic)"}
    if pair.kind == "datetime":
        cells = time_cells(ref, cur)[2]
        return {"missing_share_ref": ref.missing_share, "missing_share_cur": cur.missing_share,
                "unparsed_cur": cur.n_unparsed, "compared_on": cells,
                "ref_first": ref.describe()["first"], "ref_last": ref.describe()["last"],
                "cur_first": cur.describe()["first"], "cur_last": cur.describe()["last"]}
    return token_details(ref, cur)


def _schema_findings(ref: DatasetProfile, new: DatasetProfile) -> list[dict]:
    findings = []
    for name, type_name in new.unsupported.items():
        severity = "warn" if name in ref.features else "info"  # a feature broke, or it never had values to compare
        findings.append({"type": "unsupported_type", "feature": name, "severity": severity, "value_type": type_name,
                         "message": f"{name} holds {type_name} values, which have no distribution to compare"})
    for name in ref.features:
        if name not in new.features and name not in new.unsupported:
            findings.append({"type": "missing_column", "feature": name, "severity": "warn",
                             "message": f"{name} is in the reference but missing from the current data"})
    for name, summary in new.features.items():
        if name not in ref.features:
            findings.append({"type": "extra_column", "feature": name, "severity": "info",
                             "message": f"{name} is in the current data but not in the reference"})
        elif ref.features[name].kind != summary.kind:
            findings.append({"type": "kind_mismatch", "feature": name, "severity": "warn",
                             "message": f"{name} is {ref.features[name].kind} in the reference "
                                        f"and {summary.kind} now; not compared"})
        elif name in ref.dtypes and name in new.dtypes and ref.dtypes[name] != new.dtypes[name]:
            before, after = ref.dtypes[name], new.dtypes[name]
            # number -> text is a broken producer even when the text still parses
            severity = "warn" if dtype_family(before) != dtype_family(after) else "info"
            findings.append({"type": "dtype_changed", "feature": name, "severity": severity,
                             "message": f"{name} changed type from {before} to {after}"})
    return findings


def _quality_findings(row: dict) -> list[dict]:
    name, found = row["name"], []
    if row["n_cur"] == 0:
        found.append({"type": "no_values", "feature": name, "severity": "alert",
                      "message": f"{name} has no usable values in the current data"})
    miss_ref, miss_cur = row.get("missing_share_ref", 0.0), row.get("missing_share_cur", 0.0)
    if miss_cur > 0:
        severity = "warn" if miss_cur > miss_ref + 0.1 else "info"
        found.append({"type": "missing_values", "feature": name, "severity": severity,
                      "share": miss_cur, "reference_share": miss_ref,
                      "message": f"{name}: {miss_cur:.1%} missing (reference {miss_ref:.1%})"})
    if row.get("infinite_cur"):
        found.append({"type": "non_finite", "feature": name, "severity": "warn",
                      "count": row["infinite_cur"], "share": row["infinite_share_cur"],
                      "message": f"{name}: {row['infinite_cur']} infinite values"})
    if row.get("unparsed_cur"):
        found.append({"type": "wrong_type", "feature": name, "severity": "warn", "count": row["unparsed_cur"],
                      "message": f"{name}: {row['unparsed_cur']} values are not times"})
    if row.get("effect_overflow"):
        found.append({"type": "non_finite_effect", "feature": name, "severity": "alert",
                      "message": f"{name}: the shift is beyond float range (values near +-1.8e308)"})
    if row.get("new_category_share"):
        share = row["new_category_share"]
        found.append({"type": "new_categories", "feature": name, "severity": "warn" if share > 0.05 else "info",
                      "share": share, "examples": row["new_categories"],
                      "message": f"{name}: {share:.1%} of values are categories unseen in the reference"})
    if row.get("out_of_range_share"):
        share = row["out_of_range_share"]
        found.append({"type": "out_of_range", "feature": name, "severity": "warn" if share > 0.01 else "info",
                      "share": share, "message": f"{name}: {share:.1%} of values outside the reference range"})
    return found


def compare_profiles(
    ref_profile: DatasetProfile | dict,
    new_profile: DatasetProfile | dict,
    *,
    alpha: float = 0.05,
    correction: str = "holm",
    thresholds: Mapping | None = None,
    n_permutations: int | None = None,
    seed: int = 0,
) -> dict:
    """Drift report of ``new_profile`` against ``ref_profile`` (JSON-safe dict).

    Returns "status" (ok | warn | alert), "drift_scores" (feature -> Jensen-Shannon
    distance net of sampling noise, the common yardstick), "max_drift" (the largest
    of them), "features" (one row per feature: method, test statistic, p-values,
    effect size net of noise and raw, threshold, drifted, severity and the numbers
    behind them), "n_features", "n_drifted", "drift_share", "schema" and "quality"
    findings, and a one-line "summary".

    ``n_permutations`` sets the resolution of permutation p-values (used where a
    chi-square approximation would not hold); by default it is enough to resolve
    the smallest corrected level, alpha / n_features.
    """
    ref = ref_profile if isinstance(ref_profile, DatasetProfile) else DatasetProfile.from_dict(ref_profile)
    new = new_profile if isinstance(new_profile, DatasetProfile) else DatasetProfile.from_dict(new_profile)
    if ref.modality != new.modality:
        raise ValueError(f"cannot compare a {ref.modality} profile with a {new.modality} profile")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}; got {correction!r}")
    choose = _resolve_methods(thresholds)
    pairs = [FeaturePair(name, s.kind, ref.features[name], s) for name, s in new.features.items()
             if name in ref.features and ref.features[name].kind == s.kind]
    if n_permutations is None:
        n_permutations = int(min(100_000, max(2_000, 20 * max(1, len(pairs)) / alpha)))
    rng = np.random.default_rng(seed)

    rows = []
    for pair in pairs:
        method, threshold, alert = choose(pair.name, pair.kind)
        row = {"name": pair.name, "kind": pair.kind, "method": method.name, "test": None,
               "statistic": None, "p_value": None, "p_value_adjusted": None, "effect_size": None,
               "threshold": threshold, "alert_threshold": alert, "js": None, "significant": False,
               "drifted": False, "severity": "ok",
               "n_ref": _n_valid(pair.ref), "n_cur": _n_valid(pair.cur)}
        if row["n_ref"] and row["n_cur"]:
            row.update(_details(pair))
            test = _significance(pair, method, rng, n_permutations)
            raw, floor = method.effect(pair), noise_floor(method.name, pair)
            row.update(effect_size=_finite(corrected(method.name, raw, floor)), effect_size_raw=_finite(raw),
                       noise_floor=_finite(floor))
            if pair.kind in METHODS["jensenshannon"].kinds:  # the common yardstick of histograms
                js_raw = jensenshannon(pair)
                row.update(js=corrected("jensenshannon", js_raw, noise_floor("jensenshannon", pair)), js_raw=js_raw)
            if not math.isfinite(raw) or not math.isfinite(floor):
                # Values near the float limit: the distance itself overflows. It is
                # recorded as such, and counts as beyond the alert threshold.
                row["effect_overflow"] = True
            if test is not None:
                row.update(test=test.test, statistic=_finite(test.statistic), p_value=test.p_value)
            if method.name == "domain_classifier" and pair.domain_classifier is not None:
                row["discriminating"] = pair.domain_classifier.features  # principal axes, most telling first
        rows.append(row)

    tested = [r for r in rows if r["p_value"] is not None]
    adjusted = CORRECTIONS[correction](np.array([r["p_value"] for r in tested]))
    for row, p_adj in zip(tested, adjusted):
        row["p_value_adjusted"] = float(p_adj)
        row["significant"] = bool(p_adj <= alpha)
        effect = math.inf if row.get("effect_overflow") else row["effect_size"]
        if row["significant"] and effect is not None and effect >= row["threshold"]:
            row["drifted"] = True
            row["severity"] = "alert" if effect > row["alert_threshold"] else "warn"

    drifted = [r for r in rows if r["drifted"]]
    schema = _schema_findings(ref, new)
    # A column of another kind or type is at least a warning; a missing or unsupported
    # one is the data-quality gate's failure, not drift.
    severities = [r["severity"] for r in rows] + [f["severity"] for f in schema
                                                   if f["type"] in _STATUS_SCHEMA and f["severity"] in SEVERITY_ORDER]
    status = max(severities, key=SEVERITY_ORDER.get, default="ok")
    scores = {r["name"]: r["js"] for r in rows if r["js"] is not None}
    return {
        "modality": ref.modality,
        "status": status,
        "drift_scores": scores,
        "max_drift": max(scores.values(), default=0.0),
        "features": rows,
        "n_features": len(rows),
        "n_drifted": len(drifted),
        "drift_share": len(drifted) / len(rows) if rows else 0.0,
        "schema": schema,
        "quality": [f for r in rows for f in _quality_findings(r)],
        "alpha": alpha,
        "correction": correction,
        "n_ref": ref.n_rows,
        "n_cur": new.n_rows,
        "summary": drift_sentence(status, rows),
    }


def ranked_drifted(rows: list[dict]) -> list[dict]:
    """Drifted feature rows, most drifted (relative to their threshold) first."""
    drifted = [r for r in rows if r["drifted"]]

    def rank(r):
        if r["effect_size"] is None:  # an overflowing effect
            return -math.inf
        return -(r["effect_size"] / r["threshold"]) if r["threshold"] else -math.inf

    return sorted(drifted, key=rank)


JS = "jensenshannon"  # the common yardstick of every histogram feature (drift_scores)


def effect_text(value) -> str:
    """An effect for people: 4 significant digits, or "beyond float range" (an overflowing effect is None)."""
    return "beyond float range" if value is None else fmt_sig(value)


def feature_effect(row) -> str:
    """A feature's effect in its method's unit and its JS yardstick, each named, e.g.
    "contrast: wasserstein 1.182, JS 0.5244" ("carrier: jensenshannon 0.31" when JS is the method)."""
    text = f"{row['name']}: {row['method']} {effect_text(row.get('effect_size'))}"
    if row["method"] != JS and row.get("js") is not None:
        text += f", JS {fmt_sig(row['js'])}"
    return text


def describe_effects(rows, limit: int = 3) -> str:
    """The first ``limit`` features with their effects, e.g. "contrast: wasserstein 1.182, JS 0.5244;
    brightness: wasserstein 0.56, JS 0.31 and 2 more"."""
    named = "; ".join(feature_effect(r) for r in rows[:limit])
    return named + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def drift_sentence(status: str, rows: list[dict]) -> str:
    """E.g. "drift alert on 2 of 25 features: dep_time: wasserstein 0.52, JS 0.2113; ..."."""
    drifted = ranked_drifted(rows)
    if not drifted:
        return f"no drift in {len(rows)} features"
    return f"drift {status} on {len(drifted)} of {len(rows)} features: {describe_effects(drifted)}"
