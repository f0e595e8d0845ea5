"""Alert routing: notifiers (log, Slack webhook, e-mail, JSON webhook), routing rules
by severity, and the messages they send. No warehouse here: lib/notify.py decides what
is owed to whom and records each delivery."""

from .channels import DeliveryError, channels_from_env, send_with_retry
from .messages import Message, alert_message, digest_message
from .redact import redact
from .routing import AlertPolicy, channels_for, dedupe_key, policy_of

__all__ = ["AlertPolicy", "DeliveryError", "Message", "alert_message", "channels_for", "channels_from_env",
           "dedupe_key", "digest_message", "policy_of", "redact", "send_with_retry"]
