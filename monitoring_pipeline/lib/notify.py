"""What each open alert is still owed, sent and recorded.

``notify`` runs after every monitoring step that stores alerts. For each alert of the
model with status 'open', each channel its severity routes to gets it once (an
acknowledged or resolved alert is never sent, not even when a rerun raises it again):
delivered, or suppressed as a duplicate of the same alert sent within the dedupe
window. A channel that still fails after its retries leaves the alert undelivered
there (``alert_delivery_status``, with its redacted reason), and the next run tries
again; a channel that did not answer in time or at all is not tried again in the same
run (its other alerts are recorded failed at once), so one dead receiver costs one
deadline per attempt, not one per alert. ``send_digest`` e-mails the open warnings once
a day (again status 'open' only).
"""

from __future__ import annotations

import json
from datetime import date

from monitoring_pipeline.alerts import (AlertPolicy, DeliveryError, alert_message, channels_for, channels_from_env,
                                        dedupe_key, digest_message, redact, send_with_retry)
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.deliveries import delivery_status, record_delivery, recently_delivered
from monitoring_pipeline.storage.results import open_alerts

DIGEST = "digest"


def _settled(wh: Warehouse, alert_ids: list[str], statuses=("delivered", "suppressed")) -> set[tuple[str, str]]:
    status = delivery_status(wh, alert_ids)
    return {(r.alert_id, r.channel) for r in status.itertuples() if r.status in statuses}


def _secrets(channels: dict) -> list[str]:
    return [s for channel in channels.values() for s in getattr(channel, "secrets", ())]


def notify(wh: Warehouse, model_name: str, policy: AlertPolicy, channels: dict | None = None, *,
           attempts: int = 3, backoff_s: float = 0.5) -> list[dict]:
    """Deliver what ``model_name``'s open alerts are still owed; one outcome per send."""
    channels = channels_from_env() if channels is None else channels
    alerts = open_alerts(wh, model_name)
    done = _settled(wh, alerts["alert_id"].tolist())
    secrets = _secrets(channels)
    down: dict[str, str] = {}  # channel -> why it did not answer, in this run
    outcomes = []

    def failed(alert_id: str, name: str, tries: int, reason: str, key: str) -> None:
        reason = redact(reason, secrets)
        record_delivery(wh, alert_id, name, "failed", tries, reason, key)
        outcomes.append({"alert_id": alert_id, "channel": name, "status": "failed", "error": reason})

    for alert in alerts.to_dict(orient="records"):
        key = dedupe_key(alert["model_name"], alert["alert_type"], alert["drift_type"],
                         json.loads(alert["affected_features"] or "[]"))
        message = alert_message(alert)
        for name in channels_for(alert["severity"], policy, frozenset(channels)):
            if (alert["alert_id"], name) in done:
                continue
            if name != "log" and policy.dedupe_hours > 0:
                earlier = recently_delivered(wh, key, name, policy.dedupe_hours)
                if earlier is not None and earlier != alert["alert_id"]:
                    record_delivery(wh, alert["alert_id"], name, "suppressed", 0, f"duplicate of {earlier}", key)
                    outcomes.append({"alert_id": alert["alert_id"], "channel": name, "status": "suppressed"})
                    continue
            if name in down:
                failed(alert["alert_id"], name, 0, f"not tried: {down[name]} earlier in this run", key)
                continue
            try:
                used = send_with_retry(channels[name], message, attempts, backoff_s)
            except DeliveryError as error:
                failed(alert["alert_id"], name, error.attempts, str(error), key)
                if error.down:
                    down[name] = redact(error, secrets)
                continue
            record_delivery(wh, alert["alert_id"], name, "delivered", used, None, key)
            outcomes.append({"alert_id": alert["alert_id"], "channel": name, "status": "delivered"})
    return outcomes


def send_digest(wh: Warehouse, policies: dict[str, AlertPolicy], channels: dict | None = None, *,
                day: date | None = None, attempts: int = 3, backoff_s: float = 0.5) -> dict:
    """E-mail the open warnings not in an earlier digest; models whose policy has
    ``digest: false`` are left out."""
    channels = channels_from_env() if channels is None else channels
    alerts = open_alerts(wh)
    alerts = alerts[(alerts["severity"] == "warning")
                    & alerts["model_name"].map(lambda m: policies.get(m, AlertPolicy()).digest)]
    sent = _settled(wh, alerts["alert_id"].tolist(), ("delivered",))
    owed = [a for a in alerts.to_dict(orient="records") if (a["alert_id"], DIGEST) not in sent]
    if not owed:
        return {"sent": 0, "status": "nothing to send"}
    if "email" not in channels:
        return {"sent": 0, "status": "e-mail is not configured"}
    message = digest_message(owed, (day or date.today()).isoformat())
    try:
        used = send_with_retry(channels["email"], message, attempts, backoff_s)
    except DeliveryError as error:
        reason = redact(error, _secrets(channels))
        for a in owed:
            record_delivery(wh, a["alert_id"], DIGEST, "failed", error.attempts, reason)
        return {"sent": 0, "status": "failed", "error": reason}
    for a in owed:
        record_delivery(wh, a["alert_id"], DIGEST, "delivered", used)
    return {"sent": len(owed), "status": "delivered"}
