"""Who hears about an alert: routing by severity (the seed's Phase 14, task 14.7).

- critical: Slack, e-mail and the JSON webhook at once;
- warning (the seed's "high"): Slack at once, and the daily digest e-mail;
- info (the seed's medium, low and info): the log only.

The log always gets every alert. A monitor can narrow its channels (``routes``) and
override the rules per severity in ``data/monitors.yaml``; a channel whose secrets are
not in the environment is not configured and is left out. The same alert (model, type,
drift type and features) is not sent again on a channel within ``dedupe_hours``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

CHANNELS = ("log", "slack", "email", "webhook")
SEVERITIES = ("critical", "warning", "info")
DEFAULT_RULES = {"critical": ("slack", "email", "webhook"), "warning": ("slack",), "info": ()}


@dataclass(frozen=True)
class AlertPolicy:
    routes: tuple[str, ...] = CHANNELS  # the channels this model may use
    rules: dict = field(default_factory=lambda: dict(DEFAULT_RULES))  # severity -> channels at once
    dedupe_hours: float = 24.0
    digest: bool = True  # warnings also go into the daily digest e-mail


def policy_of(config: dict | None) -> AlertPolicy:
    """A monitor's ``alerts`` mapping as a policy; unknown names raise ValueError."""
    config = dict(config or {})
    unknown = sorted(set(config) - {"routes", "rules", "dedupe_hours", "digest"})
    if unknown:
        raise ValueError(f"alerts.{unknown[0]} is not a known field (routes, rules, dedupe_hours, digest)")
    routes = tuple(config.get("routes", CHANNELS))
    bad = [r for r in routes if r not in CHANNELS]
    if bad:
        raise ValueError(f"alerts.routes: {bad[0]!r} is not a channel ({', '.join(CHANNELS)})")
    rules = dict(DEFAULT_RULES)
    for severity, channels in (config.get("rules") or {}).items():
        if severity not in SEVERITIES:
            raise ValueError(f"alerts.rules.{severity}: not a severity ({', '.join(SEVERITIES)})")
        if not isinstance(channels, (list, tuple)) or any(c not in CHANNELS for c in channels):
            raise ValueError(f"alerts.rules.{severity}: must be a list of {', '.join(CHANNELS)}, got {channels!r}")
        rules[severity] = tuple(channels)
    hours = config.get("dedupe_hours", 24.0)
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours < 0:
        raise ValueError(f"alerts.dedupe_hours: must be a number >= 0, got {hours!r}")
    if not isinstance(config.get("digest", True), bool):
        raise ValueError(f"alerts.digest: must be true or false, got {config['digest']!r}")
    return AlertPolicy(routes, rules, float(hours), config.get("digest", True))


def channels_for(severity: str, policy: AlertPolicy, configured: set[str] | frozenset[str]) -> list[str]:
    """The channels an alert of ``severity`` goes to at once: the log, then the rule's
    channels that the model routes to and that are configured."""
    wanted = [c for c in policy.rules.get(severity, ()) if c != "log"]
    return ["log"] + [c for c in wanted if c in policy.routes and c in configured]


def dedupe_key(model_name: str, alert_type: str, drift_type: str | None, features) -> str:
    """The same alert for dedupe: its model, type, drift type and features, any window."""
    key = "|".join([model_name, alert_type, drift_type or "", ",".join(sorted(features or ()))])
    return hashlib.sha1(key.encode()).hexdigest()[:20]
