"""The blocking gates of a window, decided from the alerts stored for it.

A gate reads the record, never recomputes it: whatever the gates say, every finding of
the window has been stored before they run. Three gates block what depends on a good
window (a release to consumers, a deployment):

- ``data_quality_passed``: a critical DATA_QUALITY_ISSUE (empty window, missing columns,
  impossible or too many missing values);
- ``no_drift_alert``: an input-drift alert (critical blocks; a warning only warns);
- ``no_confirmed_regression``: a candidate that significantly regressed against the champion.

Resolved alerts no longer count; acknowledged ones still do (a person saw the problem,
the data is no better for it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

GATES = ("data_quality_passed", "no_drift_alert", "no_confirmed_regression")


@dataclass(frozen=True)
class GateVerdict:
    name: str
    passed: bool
    blocks: bool  # failed at a severity that stops downstream work
    message: str
    features: tuple[str, ...] = ()
    alert_ids: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "alert_ids", tuple(self.alert_ids))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["features"], out["alert_ids"] = list(self.features), list(self.alert_ids)
        return out


def _json(value, default):
    if value is None:
        return default
    return json.loads(value) if isinstance(value, str) else value


def _kind(alert: dict) -> str | None:
    """Which gate an alert belongs to, if any."""
    details = _json(alert.get("details"), {})
    if alert["alert_type"] == "DATA_QUALITY_ISSUE" and alert["severity"] == "critical":
        return "data_quality_passed"
    if alert["alert_type"] == "DRIFT_DETECTED" and alert.get("drift_type") == "data":
        return "no_drift_alert"
    if alert["alert_type"] == "PERFORMANCE_DEGRADED" and "regressed" in details:
        return "no_confirmed_regression"
    return None


def _verdict(name: str, alerts: list[dict]) -> GateVerdict:
    if not alerts:
        return GateVerdict(name, True, False, "passed: no such finding in the window")
    blocks = name != "no_drift_alert" or any(a["severity"] == "critical" for a in alerts)
    features = []
    for a in alerts:
        features += [f for f in _json(a.get("affected_features"), []) if f not in features]
    worst = sorted(alerts, key=lambda a: a["severity"] != "critical")[0]
    return GateVerdict(name, False, blocks, f"{'failed' if blocks else 'warning'}: {worst['message']}",
                       tuple(features), tuple(a["alert_id"] for a in alerts))


def gate_verdicts(alerts: list[dict]) -> dict[str, GateVerdict]:
    """One verdict per gate from a window's stored alerts (records with ``alert_id``,
    ``alert_type``, ``drift_type``, ``severity``, ``message``, ``affected_features``,
    ``details`` and ``status``; resolved ones are ignored)."""
    live = [a for a in alerts if a.get("status", "open") != "resolved"]
    return {name: _verdict(name, [a for a in live if _kind(a) == name]) for name in GATES}
