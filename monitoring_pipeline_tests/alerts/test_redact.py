"""The one redaction function, on the secrets an error message can quote."""

import pytest

from monitoring_pipeline.alerts.redact import redact

NO_ENV: dict = {}


@pytest.mark.parametrize("text,expected", [
    ("POST https://hooks.slack.com/services/T000/B000/XXSECRETXX failed",
     "POST https://hooks.slack.com/<redacted> failed"),
    ("see http://bot:pa55word@hooks.example.com:8443/hook?token=abc123 now",
     "see http://hooks.example.com/<redacted> now"),
    ("unknown url type: 'hooks.example.invalid/services/T000/B000/SECRETTOKEN123'",
     "unknown url type: 'hooks.example.invalid/<redacted>'"),
    ("connect to alerts:hunter2@smtp.example.com failed", "connect to <redacted>@smtp.example.com failed"),
    ("login failed: password=hunter2 user=ana", "login failed: password=<redacted> user=ana"),
    ('{"api_key": "k-123456", "SMTP_PASSWORD": "s3cr3t!"}', '{"api_key": "<redacted>", "SMTP_PASSWORD": "<redacted>"}'),
    ("GET /x?access_token=abc.def&x=1", "GET /x?access_token=<redacted>&x=1"),
    ("Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: Bearer <redacted>"),
    ("retry with bearer abcDEF0123456789", "retry with bearer <redacted>"),
    ("slack said xoxb-1234-5678-abcdef", "slack said <redacted>"),
])
def test_urls_credentials_and_tokens_are_redacted(text, expected):
    assert redact(text, env=NO_ENV) == expected


def test_the_values_of_the_secret_settings_are_redacted_wherever_they_appear():
    env = {"SLACK_WEBHOOK_URL": "hooks.example.invalid/services/T000/B000/SECRETTOKEN123",
           "SMTP_USER": "alertbot", "SMTP_PASSWORD": "hunter2-not-for-logs"}
    text = ("ValueError: unknown url type: 'hooks.example.invalid/services/T000/B000/SECRETTOKEN123'; "
            "path /services/T000/B000/SECRETTOKEN123 alone; 535 alertbot refused hunter2-not-for-logs")
    out = redact(text, env=env)
    for secret in ("SECRETTOKEN123", "alertbot", "hunter2-not-for-logs"):
        assert secret not in out
    assert out.startswith("ValueError: unknown url type: '<redacted URL>'; path /<redacted> alone; 535 <redacted>")
    # A channel passes its own secrets when they are not in the environment; a receiver
    # that echoes only the key part of its URL does not leak it either.
    assert redact("sent as alertbot", ["alertbot"], env={}) == "sent as <redacted>"
    url = "https://hooks.example.com/services/T0AB12CD/B0XYZ789/abcdefghijklmnopqrstuvwx"
    assert redact("503 for B0XYZ789 abcdefghijklmnopqrstuvwx services", [url], env={}) == \
        "503 for <redacted> <redacted> services"


def test_plain_monitoring_text_is_left_alone_and_redaction_is_idempotent():
    plain = ("[critical] DRIFT_DETECTED flights 2026-01-04: data drift alert on 1 of 7 features: dep_time "
             "(wasserstein 0.52), mean 1301 -> 1544; report data/reports/flights/2026-01-04.html; "
             "tokens: 512; Alert id: abc123 (acknowledge: monitoring-pipeline alerts ack abc123 --by <name>)")
    assert redact(plain, env=NO_ENV) == plain
    messy = "https://u:p@h.example.com/a/b password=x Authorization: Bearer t0k3n hooks.example.com/T/B/C"
    once = redact(messy, env=NO_ENV)
    assert redact(once, env=NO_ENV) == once
    assert "t0k3n" not in once and "/T/B/C" not in once and "u:p" not in once
