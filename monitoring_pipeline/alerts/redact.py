"""One redaction for every text the project writes about delivery: delivery reasons, log
lines, the exceptions it raises, Dagster metadata and the run-failure alert.

Webhook URLs carry their token in the path, SMTP settings carry a user and a password,
and an error message may quote any of them. ``redact`` removes:

- the values of the secret settings (``SECRET_SETTINGS`` in the environment, and any
  ``secrets`` the caller knows, e.g. a channel's own URL and password), anywhere, and
  a secret URL's path and its key-like parts (``T0AB12CD``) when quoted alone;
- any URL's user, password, port, path and query: ``https://hooks.slack.com/<redacted>``;
- a host followed by a path without a scheme (``hooks.slack.com/services/...``);
- ``user:password@`` before a host; ``password=...``, ``token: ...``, ``"api_key": "..."``;
- ``Bearer ...`` and ``Authorization: ...`` credentials, and Slack tokens (``xoxb-...``).

>>> redact("POST https://bot:pw@hooks.example.com:8443/services/T0/B0/abc?x=1 failed")
'POST https://hooks.example.com/<redacted> failed'
>>> redact("login with password=hunter2 refused", env={})
'login with password=<redacted> refused'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

SECRET_SETTINGS = ("SLACK_WEBHOOK_URL", "ALERT_WEBHOOK_URL", "SMTP_USER", "SMTP_PASSWORD")
REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 3  # a shorter value is no secret, and replacing it would garble every text

_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*)://(?:[^\s/?#@'\"<>]*@)?([^\s/?#:'\"<>]*)(?::\d*)?([^\s'\"<>]*)")
_HOST_PATH = re.compile(r"(?i)(?<![\w@/.:-])((?:[a-z0-9-]+\.)+[a-z]{2,})(?::\d+)?(/[^\s'\"<>]*)")
_USERINFO = re.compile(r"(?<![\w/.-])[^\s:/@'\"<>]+:[^\s/@'\"<>]+@(?=[\w.-]+)")
_ASSIGNED = re.compile(r"(?i)([\w.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key"
                       r"|credentials?)\"?'?)(\s*[=:]\s*)(\"?'?)([^\s&\"',;}\]]+)")
_AUTHORIZATION = re.compile(r"(?i)\b(authorization\s*[:=]\s*)(?:(bearer|basic|token)\s+)?[^\s,;'\"]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_SLACK_TOKEN = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+|\bxapp-[A-Za-z0-9-]+")


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The values of the secret settings that are set."""
    env = os.environ if env is None else env
    return [env[name] for name in SECRET_SETTINGS if env.get(name)]


def _shown_url(match: re.Match) -> str:
    scheme, host, rest = match.group(1), match.group(2), match.group(3)
    return f"{scheme}://{host}" + (f"/{REDACTED}" if rest.strip("/") else rest)


def _token_like(part: str) -> bool:
    """A URL part that is a key, not a word: long, or of letters and digits mixed."""
    return len(part) >= 20 or (len(part) >= 8 and bool(re.search(r"\d", part)) and bool(re.search(r"[A-Za-z]", part)))


def _replace_known(text: str, secret: str) -> str:
    secret = secret.strip()
    if len(secret) < MIN_SECRET_LENGTH:
        return text
    if "/" in secret or "://" in secret:  # a URL: the whole of it, its path, then its token-like parts
        text = text.replace(secret, "<redacted URL>")
        path = re.sub(r"^(?:[a-zA-Z][\w+.-]*://)?[^/]*", "", secret).rstrip("/")
        if len(path.strip("/")) >= MIN_SECRET_LENGTH:
            text = text.replace(path, "/" + REDACTED)
        for part in sorted(set(re.split(r"[/?&=#]", path)), key=len, reverse=True):
            if _token_like(part):
                text = re.sub(rf"(?<![\w]){re.escape(part)}(?![\w])", REDACTED, text)
        return text
    # A user name may be a plain word: only whole occurrences go.
    return re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", REDACTED, text)


def redact(text: object, secrets: Iterable[str | None] = (), env: Mapping[str, str] | None = None) -> str:
    """``text`` (anything, as str) with the secrets above replaced; safe to apply twice."""
    out = "" if text is None else str(text)
    known = sorted({s for s in [*secrets, *secret_values(env)] if s}, key=len, reverse=True)
    for secret in known:  # longest first: a URL before the host or user it contains
        out = _replace_known(out, secret)
    out = _URL.sub(_shown_url, out)
    out = _HOST_PATH.sub(lambda m: f"{m.group(1)}/{REDACTED}" if m.group(2).strip("/") else m.group(0), out)
    out = _USERINFO.sub(REDACTED + "@", out)
    out = _ASSIGNED.sub(lambda m: m.group(0) if m.group(4).startswith("<redacted")
                        else f"{m.group(1)}{m.group(2)}{m.group(3)}{REDACTED}", out)
    out = _AUTHORIZATION.sub(lambda m: m.group(1) + (f"{m.group(2)} " if m.group(2) else "") + REDACTED, out)
    out = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", out)
    return _SLACK_TOKEN.sub(REDACTED, out)
