"""Root-cause diagnosis of a window's alerts (the seed's Phase 8, sections 4-5), without an LLM.

From what monitoring measured about one window, ``diagnose`` returns one category
with a hypothesis sentence, the evidence behind it (with numbers), and an action:

- **data**: input features drifted, or their missing / new-category share rose.
  Evidence ranks the drifted features by their contribution (effect size relative to
  the method's threshold, as a share of the total), e.g. "Feature dep_time mean
  shifted from 1301 to 1544 (+18.7%)". Action: retrain on recent labeled data, or fix
  the upstream data when the finding is missing values or unseen categories.
- **model**: the model changed or broke while the inputs stayed put. A new version
  coincides with a performance drop (action: rollback); accuracy fell without input
  drift (concept drift; action: retrain); the outputs drifted without input drift
  (action: rollback after a version change, else investigate the model).
- **infrastructure**: latency p95 or error rate rose while the inputs were stable.
  Action: investigate the serving infrastructure.

The rules are checked in that order of specificity; the first that holds decides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from .drift import ranked_drifted

Category = Literal["data", "model", "infrastructure", "none"]
Action = Literal["retrain", "rollback", "fix_data", "investigate_infrastructure", "investigate_model", "none"]

ACTIONS = {
    "retrain": "Retrain on recent labeled data (retrain_model_job); promote only if it beats the champion.",
    "rollback": "Roll back to the previous champion (rollback_model_job) and review the new version.",
    "fix_data": "Fix the upstream data (missing values, new categories) before trusting this window.",
    "investigate_infrastructure": "Investigate the serving infrastructure: load, timeouts, dependencies, errors.",
    "investigate_model": "Compare the model's outputs with the reference; check its inputs' preprocessing.",
    "none": "No action needed.",
}


@dataclass(frozen=True)
class WindowFindings:
    """What monitoring measured about one window; every part is optional."""

    input_drift: dict | None = None  # compare_profiles report of the inputs
    output_drift: dict | None = None  # compare_profiles report of the outputs
    concept: dict | None = None  # concept_drift result
    accuracy: float | None = None  # realized in this window
    baseline_accuracy: float | None = None  # the serving version's own (or the previous windows')
    max_accuracy_drop: float = 0.05
    version: str | None = None  # serving this window
    previous_version: str | None = None  # serving the windows before
    latency_p95_ms: float | None = None
    baseline_latency_p95_ms: float | None = None  # the previous windows'
    error_rate: float | None = None
    baseline_error_rate: float | None = None
    latency_factor: float = 1.5  # p95 this many times the baseline counts as "up"
    error_rate_rise: float = 0.02  # absolute rise that counts as "up"


@dataclass(frozen=True)
class Diagnosis:
    category: Category
    hypothesis: str
    evidence: tuple[str, ...]
    action: Action
    recommended_action: str
    features: tuple[dict, ...] = field(default=())  # ranked drifted features, with numbers

    def to_dict(self) -> dict:
        out = asdict(self)
        out["evidence"], out["features"] = list(self.evidence), list(self.features)
        return out


def _status(report: dict | None) -> str:
    return (report or {}).get("status", "ok")


def _num(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def feature_evidence(row: dict) -> str:
    """One drifted feature in a sentence, with its numbers."""
    name = row["name"]
    ref, cur = row.get("ref_mean"), row.get("cur_mean")
    if ref is not None and cur is not None:
        change = f" ({(cur - ref) / abs(ref):+.1%})" if ref else ""
        return f"Feature {name} mean shifted from {_num(ref)} to {_num(cur)}{change}"
    if row.get("new_category_share"):
        examples = ", ".join(map(str, row.get("new_categories") or []))
        return (f"Feature {name}: {row['new_category_share']:.1%} of values are categories unseen in the reference"
                + (f" ({examples})" if examples else ""))
    if row.get("top_changes"):
        return f"Feature {name}: {row['top_changes']}"
    if row.get("oov_share") is not None:
        return (f"Feature {name}: token overlap with the reference {row.get('overlap', 0.0):.2f}, "
                f"{row['oov_share']:.1%} of tokens out of vocabulary")
    if row.get("discriminating"):
        axes = ", ".join(str(d.get("feature")) for d in row["discriminating"][:3])
        return (f"Feature {name}: {row['method']} {row['effect_size']:.3g} (threshold {row['threshold']:.3g}); "
                f"told apart most by {axes}")
    return f"Feature {name}: {row['method']} {row['effect_size']:.3g} (threshold {row['threshold']:.3g})"


def _ranked(report: dict) -> list[dict]:
    rows = ranked_drifted(report.get("features", []))
    weights = [r["effect_size"] / r["threshold"] if r.get("threshold") else 1.0 for r in rows]
    total = sum(weights) or 1.0
    return [{"feature": r["name"], "method": r["method"], "effect_size": r["effect_size"],
             "contribution": w / total, "ref_mean": r.get("ref_mean"), "cur_mean": r.get("cur_mean"),
             "evidence": feature_evidence(r)} for r, w in zip(rows, weights)]


def _quality_rows(report: dict) -> list[str]:
    found = []
    for r in report.get("features", []):
        miss_ref, miss_cur = r.get("missing_share_ref") or 0.0, r.get("missing_share_cur") or 0.0
        if miss_cur > miss_ref + 0.1:
            found.append(f"Feature {r['name']} missing in {miss_cur:.1%} of rows (reference {miss_ref:.1%})")
        if (r.get("new_category_share") or 0.0) > 0.05 and not r.get("drifted"):
            found.append(feature_evidence(r))
    return found


def _accuracy_drop(f: WindowFindings) -> float | None:
    if f.accuracy is None or f.baseline_accuracy is None:
        return None
    drop = f.baseline_accuracy - f.accuracy
    return drop if drop > f.max_accuracy_drop else None


def _infrastructure(f: WindowFindings) -> list[str]:
    found = []
    if f.latency_p95_ms is not None and f.baseline_latency_p95_ms and \
            f.latency_p95_ms > f.latency_factor * f.baseline_latency_p95_ms:
        found.append(f"Latency p95 {_num(f.latency_p95_ms)} ms vs {_num(f.baseline_latency_p95_ms)} ms before "
                     f"(x{f.latency_p95_ms / f.baseline_latency_p95_ms:.1f})")
    if f.error_rate is not None and f.error_rate > (f.baseline_error_rate or 0.0) + f.error_rate_rise:
        found.append(f"Error rate {f.error_rate:.1%} vs {(f.baseline_error_rate or 0.0):.1%} before")
    return found


def diagnose(f: WindowFindings) -> Diagnosis:
    """The most specific explanation of the window's findings."""
    drifted = _status(f.input_drift) in ("warn", "alert")
    ranked = _ranked(f.input_drift) if drifted else []
    quality = _quality_rows(f.input_drift or {})
    drop = _accuracy_drop(f)
    new_version = f.version is not None and f.previous_version is not None and f.version != f.previous_version
    perf = [f"Accuracy {f.accuracy:.3f} vs {f.baseline_accuracy:.3f} expected ({-drop:+.3f})"] if drop else []
    version_note = [f"Version {f.version} replaced {f.previous_version} before this window"] if new_version else []

    if ranked:
        share = f.input_drift.get("drift_share")
        head = ranked[0]
        hypothesis = (f"The input data shifted: {len(ranked)} feature{'s' * (len(ranked) > 1)} drifted"
                      + (f" ({share:.0%} of the features)" if share is not None else "")
                      + f", led by {head['feature']} ({head['contribution']:.0%} of the drift)"
                      + ("; accuracy fell with it" if drop else "") + ".")
        return Diagnosis("data", hypothesis, tuple([r["evidence"] for r in ranked[:5]] + quality + perf + version_note),
                         "retrain", ACTIONS["retrain"], tuple(ranked[:10]))
    if quality:
        return Diagnosis("data", "The input data degraded: more missing values or unseen categories than in the "
                         "reference.", tuple(quality + perf), "fix_data", ACTIONS["fix_data"])
    if new_version and (drop or _status(f.output_drift) in ("warn", "alert")):
        what = "performance dropped" if drop else "the outputs drifted"
        return Diagnosis("model", f"A new model version coincides with the problem: {what} after {f.version} "
                         f"replaced {f.previous_version}, with stable inputs.",
                         tuple(version_note + perf + _output_evidence(f)), "rollback", ACTIONS["rollback"])
    if drop:
        concept = (f.concept or {}).get("drifted")
        reasons = list((f.concept or {}).get("reasons") or [])
        hypothesis = ("Performance dropped without input drift: the relation between inputs and label changed "
                      "(concept drift)." if concept else
                      "Performance dropped without input drift: the model no longer fits the labels it meets.")
        return Diagnosis("model", hypothesis, tuple(perf + [f"Concept drift: {r}" for r in reasons]),
                         "retrain", ACTIONS["retrain"])
    if _status(f.output_drift) in ("warn", "alert"):
        return Diagnosis("model", "The model's outputs drifted while its inputs did not.",
                         tuple(_output_evidence(f)), "investigate_model", ACTIONS["investigate_model"])
    infra = _infrastructure(f)
    if infra:
        return Diagnosis("infrastructure", "The service slowed down or failed more while its inputs were stable.",
                         tuple(infra), "investigate_infrastructure", ACTIONS["investigate_infrastructure"])
    return Diagnosis("none", "Nothing abnormal: inputs, outputs, accuracy and service are within bounds.", (),
                     "none", ACTIONS["none"])


def _output_evidence(f: WindowFindings) -> list[str]:
    if _status(f.output_drift) not in ("warn", "alert"):
        return []
    return [f"Output {r['evidence'][len('Feature '):]}" for r in _ranked(f.output_drift)[:3]]
