"""The notifiers: the log, a Slack incoming webhook, e-mail over SMTP and a JSON webhook.

Their settings come only from the environment (SLACK_WEBHOOK_URL, SMTP_HOST, SMTP_PORT,
SMTP_USER, SMTP_PASSWORD, ALERT_EMAIL_RECIPIENTS, ALERT_WEBHOOK_URL; SMTP_STARTTLS,
ALERT_EMAIL_SENDER and ALERT_DELIVERY_DEADLINE_S are optional). A channel whose
variables are unset is not configured.

Delivery is bounded and sealed. Each attempt has one deadline for connect, send and
read together (``ALERT_DELIVERY_DEADLINE_S``, 15 s by default), so a receiver that
trickles its answer cannot hold the run. Whatever goes wrong in a channel (a URL without
a scheme, DNS, a refused connection, the deadline, an HTTP status, an SMTP reply)
leaves ``send_with_retry`` as a ``DeliveryError`` whose reason is redacted: it says what
failed, never the URL, the user or the password.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import smtplib
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage

from .deadline import DEADLINE_ENV, DEFAULT_DEADLINE_S, Deadline
from .messages import Message
from .redact import redact

_MAX_RESPONSE_BYTES = 64 * 1024  # a webhook's answer is read (and bounded), never used


class DeliveryError(Exception):
    """A channel could not deliver. ``retry``: another attempt may succeed; ``down``: the
    receiver did not answer in time or at all (no use trying it again in this run);
    ``attempts``: the attempts made. Raised by ``send_with_retry`` with a redacted reason."""

    def __init__(self, reason: str, *, retry: bool = True, down: bool = False, attempts: int = 1):
        super().__init__(reason)
        self.retry, self.down, self.attempts = retry, down, attempts


@dataclass(frozen=True)
class LogChannel:
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("monitoring_pipeline.alerts"))
    name: str = "log"
    secrets: tuple = ()

    def send(self, message: Message) -> None:
        self.logger.warning(redact(message.text))


def _bounded(connection_class, deadline: Deadline):
    class Bounded(connection_class):
        def connect(self):
            self.timeout = deadline.remaining()
            super().connect()
            deadline.watch(self.sock)
    return Bounded


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline):
        super().__init__()
        self._deadline = deadline

    def http_open(self, req):
        return self.do_open(_bounded(http.client.HTTPConnection, self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline):
        super().__init__()
        self._deadline = deadline

    def https_open(self, req):
        return self.do_open(_bounded(http.client.HTTPSConnection, self._deadline), req, context=self._context)


def _transport_error(error: BaseException, deadline: Deadline) -> DeliveryError:
    if deadline.passed:
        return DeliveryError(f"deadline of {deadline.seconds:g}s exceeded (connect, send and read together)",
                             down=True)
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    detail = getattr(error, "strerror", None) or str(error) or "connection failed"
    return DeliveryError(f"unreachable: {type(error).__name__}: {detail}", down=True)


def _smtp_error(error: OSError, deadline: Deadline) -> DeliveryError:
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"SMTP login refused ({error.smtp_code})", retry=False)
    if (deadline.passed or not isinstance(error, smtplib.SMTPException)
            or isinstance(error, smtplib.SMTPServerDisconnected)):
        return _transport_error(error, deadline)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _ in error.recipients.values()})
        return DeliveryError(f"SMTP recipients refused ({', '.join(codes)})", retry=False)
    if isinstance(error, smtplib.SMTPResponseException):  # 4xx may pass, 5xx will not
        return DeliveryError(f"SMTP {type(error).__name__} ({error.smtp_code})", retry=400 <= error.smtp_code < 500)
    return DeliveryError(f"SMTP {type(error).__name__}", retry=False)


def _post_json(url: str, body: dict, deadline_s: float, setting: str) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        request = urllib.request.Request(url, data=json.dumps(body, default=str).encode(), method="POST",
                                         headers={"Content-Type": "application/json"}) if valid else None
    except ValueError:
        valid = False
    if not valid:
        raise DeliveryError(f"{setting} is not an http(s) URL with a host (its value is not shown)", retry=False)
    with Deadline(deadline_s) as deadline:
        opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline))
        try:
            with opener.open(request, timeout=deadline.remaining()) as response:
                response.read(_MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as error:
            error.close()
            raise DeliveryError(f"HTTP {error.code} {str(error.reason)[:200]}",
                                retry=error.code >= 500 or error.code in (408, 429)) from None
        except http.client.InvalidURL:
            raise DeliveryError(f"{setting} is not a valid URL (its value is not shown)", retry=False) from None
        except (OSError, http.client.HTTPException) as error:
            raise _transport_error(error, deadline) from None


@dataclass(frozen=True)
class SlackChannel:
    url: str = field(repr=False)
    name: str = "slack"
    deadline_s: float = DEFAULT_DEADLINE_S

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.url,)

    def send(self, message: Message) -> None:
        _post_json(self.url, {"text": message.text}, self.deadline_s, "SLACK_WEBHOOK_URL")


@dataclass(frozen=True)
class WebhookChannel:
    url: str = field(repr=False)
    name: str = "webhook"
    deadline_s: float = DEFAULT_DEADLINE_S

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.url,)

    def send(self, message: Message) -> None:
        _post_json(self.url, message.payload, self.deadline_s, "ALERT_WEBHOOK_URL")


class _BoundedSMTP(smtplib.SMTP):
    """An SMTP client whose socket is watched by the deadline from the greeting on."""

    def __init__(self, deadline: Deadline):
        self._deadline = deadline
        super().__init__(timeout=deadline.remaining())

    def _get_socket(self, host, port, timeout):
        return self._deadline.watch(super()._get_socket(host, port, self._deadline.remaining()))


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()  # the message was accepted or has failed already: a lost QUIT changes neither


@dataclass(frozen=True)
class EmailChannel:
    host: str
    port: int
    recipients: tuple[str, ...]
    sender: str = "monitoring-pipeline@localhost"
    user: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    name: str = "email"
    deadline_s: float = DEFAULT_DEADLINE_S

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.user, self.password) if s)

    def send(self, message: Message) -> None:
        email = EmailMessage()
        email["Subject"], email["From"], email["To"] = message.subject, self.sender, ", ".join(self.recipients)
        email.set_content(message.text)
        with Deadline(self.deadline_s) as deadline:
            smtp = _BoundedSMTP(deadline)
            try:
                smtp.connect(self.host, self.port)
                if self.starttls:
                    deadline.watch(smtp.sock)  # the TLS handshake gets the time left, no more
                    smtp.starttls()
                    deadline.watch(smtp.sock)
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(email)
            except OSError as error:  # smtplib's errors are OSErrors too
                raise _smtp_error(error, deadline) from None
            finally:
                _close(smtp)


@dataclass(frozen=True)
class UnusableChannel:
    """A channel whose settings are wrong: each send fails with ``reason``, so the error is
    recorded as its failed delivery and the other channels go on."""
    name: str
    reason: str
    secrets: tuple = ()

    def send(self, message: Message) -> None:
        raise DeliveryError(self.reason, retry=False)


def deadline_from_env(env) -> float:
    raw = env.get(DEADLINE_ENV)
    if not raw:
        return DEFAULT_DEADLINE_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{DEADLINE_ENV} must be a number of seconds > 0, got {raw!r}")
    return seconds


def channels_from_env(env: dict | None = None) -> dict:
    """The configured channels by name; the log always."""
    env = os.environ if env is None else env
    deadline_s = deadline_from_env(env)
    channels: dict = {"log": LogChannel()}
    if env.get("SLACK_WEBHOOK_URL"):
        channels["slack"] = SlackChannel(env["SLACK_WEBHOOK_URL"], deadline_s=deadline_s)
    if env.get("ALERT_WEBHOOK_URL"):
        channels["webhook"] = WebhookChannel(env["ALERT_WEBHOOK_URL"], deadline_s=deadline_s)
    recipients = tuple(r.strip() for r in env.get("ALERT_EMAIL_RECIPIENTS", "").split(",") if r.strip())
    if env.get("SMTP_HOST") and recipients:
        raw_port = (env.get("SMTP_PORT") or "25").strip()
        if not (raw_port.isdigit() and 0 < int(raw_port) < 65536):
            channels["email"] = UnusableChannel("email", "SMTP_PORT is not a port number (1-65535)")
        else:
            port = int(raw_port)
            starttls = env.get("SMTP_STARTTLS", "1" if port == 587 else "0").lower() in ("1", "true", "yes")
            channels["email"] = EmailChannel(env["SMTP_HOST"], port, recipients,
                                             env.get("ALERT_EMAIL_SENDER") or "monitoring-pipeline@localhost",
                                             env.get("SMTP_USER") or None, env.get("SMTP_PASSWORD") or None,
                                             starttls, deadline_s=deadline_s)
    return channels


def send_with_retry(channel, message: Message, attempts: int = 3, backoff_s: float = 0.5) -> int:
    """Send, retrying a failure that may pass with exponential backoff; the attempts it
    took. Any failure of the channel raises ``DeliveryError`` with a redacted reason."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    secrets = getattr(channel, "secrets", ())
    for attempt in range(1, attempts + 1):
        try:
            channel.send(message)
            return attempt
        except DeliveryError as error:
            failure = DeliveryError(redact(error, secrets), retry=error.retry, down=error.down, attempts=attempt)
        except Exception as error:  # the channel boundary: any error is this channel's failed delivery, redacted
            failure = DeliveryError(redact(f"{type(error).__name__}: {error}", secrets), retry=False, attempts=attempt)
        if attempt == attempts or not failure.retry:
            raise failure from None
        time.sleep(backoff_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # every path of the last attempt returns or raises
