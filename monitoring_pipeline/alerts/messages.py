"""What an alert says on each channel: the model, the severity, the top features with
their numbers, the diagnosis and the recommended action."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    payload: dict  # the JSON webhook's body


def _details(alert: dict) -> dict:
    details = alert.get("details") or {}
    return json.loads(details) if isinstance(details, str) else details


def _features(alert: dict) -> list[str]:
    raw = alert.get("affected_features") or []
    return json.loads(raw) if isinstance(raw, str) else list(raw)


def feature_lines(details: dict, limit: int = 5) -> list[str]:
    lines = []
    for top in (details.get("top_features") or [])[:limit]:
        line = f"{top['feature']}: {top['method']} {top['effect_size']:.3g}"
        if top.get("ref_mean") is not None and top.get("cur_mean") is not None:
            line += f", mean {top['ref_mean']:.4g} -> {top['cur_mean']:.4g}"
        lines.append(line)
    return lines


def alert_message(alert: dict) -> Message:
    """``alert`` is a row of ml_monitoring_alerts (or an Alert's to_dict())."""
    details = _details(alert)
    diagnosis = details.get("diagnosis") or {}
    window = alert.get("window") or str(alert.get("partition_key") or "").split("|")[0]
    subject = (f"[{alert['severity']}] {alert['alert_type']} {alert['model_name']}"
               + (f" {window}" if window else ""))
    lines = [subject, "", alert["message"]]
    features = feature_lines(details)
    if features:
        lines += ["", "Top features:", *[f"- {f}" for f in features]]
    if diagnosis:
        lines += ["", f"Diagnosis ({diagnosis.get('category')}): {diagnosis.get('hypothesis')}",
                  *[f"- {e}" for e in diagnosis.get("evidence") or []]]
    lines += ["", f"Recommended action: {alert.get('recommended_action') or diagnosis.get('recommended_action')}",
              f"Alert id: {alert['alert_id']} (acknowledge: monitoring-pipeline alerts ack {alert['alert_id']} --by <name>)"]
    payload = {"summary": subject + ": " + alert["message"][:500], "severity": alert["severity"],
               "source": alert["model_name"], "dedup_key": alert["alert_id"],
               "custom_details": {"alert_type": alert["alert_type"], "window": window,
                                  "model_version": alert.get("model_version"), "features": _features(alert),
                                  "top_features": details.get("top_features") or [],
                                  "diagnosis": diagnosis or None,
                                  "recommended_action": alert.get("recommended_action")}}
    return Message(subject, "\n".join(lines), payload)


def digest_message(alerts: list[dict], day: str) -> Message:
    """One e-mail for the day's warnings."""
    subject = f"[digest] {len(alerts)} open warning{'s' * (len(alerts) != 1)} on {day}"
    blocks = [alert_message(a).text for a in alerts]
    text = subject + "\n\n" + "\n\n----\n\n".join(blocks)
    return Message(subject, text, {"summary": subject, "alerts": [a["alert_id"] for a in alerts]})
