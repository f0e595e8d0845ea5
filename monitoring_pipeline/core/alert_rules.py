"""Which findings become alerts, how severe, and what to do about them.

Alerts use the seed's vocabulary (Phase 14 task 14.1, Phase 5): severity critical |
warning | info; type DRIFT_DETECTED | PERFORMANCE_DEGRADED | DATA_QUALITY_ISSUE |
SLO_BREACH. An alert's id is a hash of the model, the window, the type and the
affected features, so recomputing a window yields the same ids and never a duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Literal

from .drift import ranked_drifted
from .quality import QualityResult

Severity = Literal["critical", "warning", "info"]
AlertType = Literal["DRIFT_DETECTED", "PERFORMANCE_DEGRADED", "DATA_QUALITY_ISSUE", "SLO_BREACH"]

_DRIFT_SEVERITY = {  # (drift type, report status) -> alert severity
    ("data", "alert"): "critical", ("data", "warn"): "warning",
    ("prediction", "alert"): "warning", ("prediction", "warn"): "info",
    ("concept", "alert"): "critical", ("concept", "warn"): "warning",
}
_DRIFT_ACTION = {
    "data": "Check the sources of the drifted features; if the shift is real, retrain on recent labeled data.",
    "prediction": "Compare inputs and model version with the reference; the outputs moved.",
    "concept": "Retrain: the relation between features and label changed.",
}


@dataclass(frozen=True)
class Alert:
    alert_id: str
    severity: Severity
    alert_type: AlertType
    model_name: str
    window: str
    message: str
    recommended_action: str
    drift_type: str | None = None
    affected_features: tuple[str, ...] = ()
    model_version: str | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["affected_features"] = list(self.affected_features)
        return out


def alert_id(model_name: str, window: str, alert_type: str, drift_type: str | None, features) -> str:
    key = "|".join([model_name, window, alert_type, drift_type or "", ",".join(sorted(features))])
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def _alert(model_name, window, severity, alert_type, message, action, drift_type=None, features=(),
           model_version=None, details=None) -> Alert:
    features = tuple(features)
    return Alert(alert_id(model_name, window, alert_type, drift_type, features), severity, alert_type,
                 model_name, window, message, action, drift_type, features, model_version, details or {})


def drift_alerts(report: dict, drift_type: str, *, model_name: str, window: str,
                 model_version: str | None = None) -> list[Alert]:
    """An alert when a drift report's status is warn or alert."""
    severity = _DRIFT_SEVERITY.get((drift_type, report.get("status")))
    if severity is None:
        return []
    rows = ranked_drifted(report["features"])
    top = [{"feature": r["name"], "method": r["method"], "effect_size": r["effect_size"],
            "ref_mean": r.get("ref_mean"), "cur_mean": r.get("cur_mean")} for r in rows[:5]]
    return [_alert(model_name, window, severity, "DRIFT_DETECTED", f"{drift_type} {report['summary']}",
                   _DRIFT_ACTION[drift_type], drift_type, [r["name"] for r in rows], model_version,
                   {"top_features": top, "drift_share": report.get("drift_share")})]


def concept_alerts(result: dict, *, model_name: str, window: str, model_version: str | None = None) -> list[Alert]:
    severity = _DRIFT_SEVERITY.get(("concept", result.get("severity")))
    if severity is None or not result.get("drifted"):
        return []
    moved = [r["feature"] for r in result["importances"][:3]]
    return [_alert(model_name, window, severity, "DRIFT_DETECTED", "concept drift: " + "; ".join(result["reasons"]),
                   _DRIFT_ACTION["concept"], "concept", moved, model_version,
                   {"importance_correlation": result["importance_correlation"],
                    "performance_change": result["performance_change"]})]


def quality_alerts(quality: QualityResult, *, model_name: str, window: str,
                   model_version: str | None = None) -> list[Alert]:
    alerts = []
    failures = quality.failures
    if failures:
        alerts.append(_alert(
            model_name, window, "critical", "DATA_QUALITY_ISSUE",
            "data quality failed: " + "; ".join(f["message"] for f in failures[:5]),
            "Fix the upstream data before trusting this window's drift and metrics.", None,
            sorted({f["feature"] for f in failures if f["feature"]}), model_version, {"findings": failures}))
    unseen = [f for f in quality.findings if f["type"] == "unseen_categories"]
    if unseen:
        alerts.append(_alert(
            model_name, window, "info", "DATA_QUALITY_ISSUE",
            "unseen categories: " + "; ".join(f["message"] for f in unseen[:5]),
            "Check whether the new categories are valid; the model has never seen them.", None,
            sorted(f["feature"] for f in unseen), model_version, {"findings": unseen}))
    return alerts


def _estimated_message(b: dict) -> str:
    """What an estimated accuracy breach says: the estimate and its interval, or that there is none to trust."""
    if not b.get("reliable", False):
        return f"estimate unreliable: {b.get('reason') or 'no reason given'}; accuracy unknown until labels arrive"
    interval = f" [{b['low']:.3f}, {b['high']:.3f}]" if b.get("low") is not None and b.get("high") is not None else ""
    return f"estimated accuracy {b['value']:.3f}{interval} below the SLO {b['bound']:g}, labels pending"


def estimated_accuracy_breach(estimate: dict, bound: float | None) -> dict | None:
    """The accuracy SLO breach of a window whose accuracy is only estimated (an
    ``estimate_performance`` result), or None. An unreliable estimate is a breach whatever its
    value (it never passes an SLO); a reliable one is when it is below ``bound``."""
    entry = estimate.get("accuracy")
    if bound is None or not isinstance(entry, dict):
        return None
    reliable = bool(entry.get("reliable", estimate.get("reliable", False))) and bool(estimate.get("reliable", True))
    value = entry.get("estimate")
    if reliable and (value is None or value >= bound):
        return None
    b = {"slo": "accuracy", "value": value, "bound": bound, "estimated": True, "reliable": reliable,
         "low": entry.get("low"), "high": entry.get("high"), "method": entry.get("method", estimate.get("method")),
         "reason": entry.get("reason") or estimate.get("reason") or ""}
    b["message"] = _estimated_message(b)
    return b


def slo_alerts(breaches: list[dict], *, model_name: str, window: str, model_version: str | None = None) -> list[Alert]:
    """Alerts of SLO breaches: a realized accuracy breach is critical, an estimated one (labels
    pending) a warning, and an estimate that cannot be trusted a warning that says so. An
    estimated breach has an id of its own, so the realized one, once labels arrive, is a new
    (critical) alert and the estimated one is resolved."""
    alerts = []
    for b in breaches:
        if b["slo"] == "accuracy" and b.get("estimated"):
            action = ("Wait for labels to confirm; meanwhile check the input drift and recent model changes."
                      if b.get("reliable", False) else
                      "Wait for labels, and check the input drift: the window's inputs are outside what the "
                      "reference covers, so the accuracy cannot be estimated.")
            alerts.append(_alert(model_name, window, "warning", "PERFORMANCE_DEGRADED", _estimated_message(b), action,
                                 None, ("estimated_accuracy",), model_version, b))
        elif b["slo"] == "accuracy":
            alerts.append(_alert(model_name, window, "critical", "PERFORMANCE_DEGRADED", b["message"],
                                 "Investigate drift and recent model changes; retrain or roll back.",
                                 None, (), model_version, b))
        else:
            severity = "critical" if b["slo"] == "error_rate" else "warning"
            alerts.append(_alert(model_name, window, severity, "SLO_BREACH", b["message"],
                                 "Investigate the serving infrastructure (load, timeouts, errors).",
                                 None, (b["slo"],), model_version, b))
    return alerts


def comparison_alerts(comparison: dict, *, model_name: str, window: str, model_version: str | None = None):
    if comparison.get("status") != "regressed" or not comparison.get("confirmed", True):
        return []
    names = [n for n in comparison["regressed"] if comparison["metrics"][n].get("gates", True)]
    detail = ", ".join(f"{n} {comparison['metrics'][n]['delta']:+.3f}" for n in names)
    return [_alert(model_name, window, "warning", "PERFORMANCE_DEGRADED", f"candidate regressed against the "
                   f"champion: {detail}", "Keep the champion; do not promote the candidate.", None, (),
                   model_version, {"regressed": names})]
