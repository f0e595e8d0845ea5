"""The notifiers: the log, a Slack incoming webhook, e-mail over SMTP and a JSON webhook.

Their settings come only from the environment (SLACK_WEBHOOK_URL, SMTP_HOST, SMTP_PORT,
SMTP_USER, SMTP_PASSWORD, ALERT_EMAIL_RECIPIENTS, ALERT_WEBHOOK_URL; SMTP_STARTTLS and
ALERT_EMAIL_SENDER are optional). A channel whose variables are unset is not
configured. No secret is ever put in an error message: a failed delivery says what
failed (HTTP status, refused connection, SMTP reply), never the URL or the password.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import smtplib
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage

from .messages import Message

TIMEOUT_S = 10.0


class DeliveryError(Exception):
    """A channel could not deliver; the message holds no secret."""


@dataclass(frozen=True)
class LogChannel:
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("monitoring_pipeline.alerts"))
    name: str = "log"

    def send(self, message: Message) -> None:
        self.logger.warning(message.text)


def _post_json(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body, default=str).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DeliveryError(f"unreachable: {type(error.reason).__name__}: {getattr(error.reason, 'strerror', None) or error.reason}") from None
    except (OSError, http.client.HTTPException) as error:
        raise DeliveryError(f"{type(error).__name__}: {getattr(error, 'strerror', None) or 'connection failed'}") from None


@dataclass(frozen=True)
class SlackChannel:
    url: str = field(repr=False)
    name: str = "slack"

    def send(self, message: Message) -> None:
        _post_json(self.url, {"text": message.text})


@dataclass(frozen=True)
class WebhookChannel:
    url: str = field(repr=False)
    name: str = "webhook"

    def send(self, message: Message) -> None:
        _post_json(self.url, message.payload)


@dataclass(frozen=True)
class EmailChannel:
    host: str
    port: int
    recipients: tuple[str, ...]
    sender: str = "monitoring-pipeline@localhost"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    name: str = "email"

    def send(self, message: Message) -> None:
        email = EmailMessage()
        email["Subject"], email["From"], email["To"] = message.subject, self.sender, ", ".join(self.recipients)
        email.set_content(message.text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_S) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(email)
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(f"SMTP login refused ({error.smtp_code})") from None
        except smtplib.SMTPException as error:
            raise DeliveryError(f"SMTP {type(error).__name__}") from None
        except OSError as error:
            raise DeliveryError(f"unreachable: {type(error).__name__}: {error.strerror or 'connection failed'}") from None


def channels_from_env(env: dict | None = None) -> dict:
    """The configured channels by name; the log always."""
    env = os.environ if env is None else env
    channels: dict = {"log": LogChannel()}
    if env.get("SLACK_WEBHOOK_URL"):
        channels["slack"] = SlackChannel(env["SLACK_WEBHOOK_URL"])
    if env.get("ALERT_WEBHOOK_URL"):
        channels["webhook"] = WebhookChannel(env["ALERT_WEBHOOK_URL"])
    recipients = tuple(r.strip() for r in env.get("ALERT_EMAIL_RECIPIENTS", "").split(",") if r.strip())
    if env.get("SMTP_HOST") and recipients:
        port = int(env.get("SMTP_PORT") or 25)
        starttls = env.get("SMTP_STARTTLS", "1" if port == 587 else "0").lower() in ("1", "true", "yes")
        channels["email"] = EmailChannel(env["SMTP_HOST"], port, recipients,
                                         env.get("ALERT_EMAIL_SENDER") or "monitoring-pipeline@localhost",
                                         env.get("SMTP_USER") or None, env.get("SMTP_PASSWORD") or None, starttls)
    return channels


def send_with_retry(channel, message: Message, attempts: int = 3, backoff_s: float = 0.5) -> int:
    """Send, retrying with exponential backoff; the attempts it took, or DeliveryError."""
    for attempt in range(1, attempts + 1):
        try:
            channel.send(message)
            return attempt
        except DeliveryError:
            if attempt == attempts:
                raise
            time.sleep(backoff_s * 2 ** (attempt - 1))
    raise DeliveryError("no attempt made")  # attempts < 1
