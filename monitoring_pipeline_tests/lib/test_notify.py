"""Alert delivery against real receivers on 127.0.0.1: an aiosmtpd SMTP server (with
login) and http.server webhooks, each started by the test on a free port."""

import json

import pytest

from monitoring_pipeline.alerts import channels_from_env, policy_of
from monitoring_pipeline.core.alert_rules import Alert, alert_id
from monitoring_pipeline.lib.notify import notify, send_digest
from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.deliveries import delivery_status
from monitoring_pipeline.storage.results import acknowledge_alert, upsert_alerts
from monitoring_pipeline_tests.receivers import PASSWORD, Receiver, free_port

SLACK_TOKEN = "T000/B000/slack-secret-token"


@pytest.fixture
def http_port():
    return free_port()


def channels(smtp_port: int, http_port: int) -> dict:
    return channels_from_env({
        "SLACK_WEBHOOK_URL": f"http://127.0.0.1:{http_port}/services/{SLACK_TOKEN}",
        "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{http_port}/hook",
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "SMTP_USER": "alerts", "SMTP_PASSWORD": PASSWORD,
        "ALERT_EMAIL_RECIPIENTS": "oncall@example.com, ml@example.com"})


def drift_alert(day: str, severity="critical", model="flights") -> Alert:
    details = {"top_features": [{"feature": "dep_time", "method": "wasserstein", "effect_size": 0.52,
                                 "ref_mean": 1301.0, "cur_mean": 1544.0}],
               "diagnosis": {"category": "data", "hypothesis": "The input data shifted: 1 feature drifted.",
                             "evidence": ["Feature dep_time mean shifted from 1301 to 1544 (+18.7%)"],
                             "action": "retrain", "recommended_action": "Retrain on recent labeled data."}}
    return Alert(alert_id(model, day, "DRIFT_DETECTED", "data", ["dep_time"]), severity, "DRIFT_DETECTED", model,
                 day, "data drift alert on 1 of 7 features: dep_time (wasserstein 0.52)",
                 "Check the sources of the drifted features; retrain on recent labeled data.", "data", ("dep_time",),
                 "v1", details)


def store(wh, *alerts):
    for a in alerts:
        upsert_alerts(wh, [a], asset_key="test", partition_key=f"{a.window}|{a.model_name}", run_id=None)


def test_a_critical_alert_reaches_slack_email_and_the_webhook_once(tmp_path, smtp, http_port, caplog, warehouse_target):
    controller, inbox = smtp
    receiver = Receiver(http_port)
    wh = open_warehouse(warehouse_target)
    alert = drift_alert("2026-01-04")
    store(wh, alert)
    try:
        out = notify(wh, "flights", policy_of({}), channels(controller.port, http_port), backoff_s=0.01)
    finally:
        receiver.close()
    assert sorted((o["channel"], o["status"]) for o in out) == [
        ("email", "delivered"), ("log", "delivered"), ("slack", "delivered"), ("webhook", "delivered")]
    posts = dict(receiver.posts)
    assert set(posts) == {"/hook", f"/services/{SLACK_TOKEN}"}
    slack, hook = posts[f"/services/{SLACK_TOKEN}"], posts["/hook"]
    for text in (slack["text"], inbox.messages[0]):
        for part in ("[critical] DRIFT_DETECTED flights 2026-01-04", "dep_time: wasserstein 0.52, mean 1301 -> 1544",
                     "Feature dep_time mean shifted from 1301 to 1544 (+18.7%)",
                     "Recommended action: Check the sources of the drifted features"):
            assert part in text, part
    assert "To: oncall@example.com, ml@example.com" in inbox.messages[0] and inbox.logins == ["alerts"]
    assert hook["severity"] == "critical" and hook["custom_details"]["top_features"][0]["cur_mean"] == 1544.0
    assert notify(wh, "flights", policy_of({}), channels(controller.port, http_port)) == []  # nothing owed now

    # Secrets are never stored or logged.
    dumped = json.dumps([wh.read(f"SELECT * FROM {t}").astype(str).values.tolist()
                         for t in ("alert_deliveries", "ml_monitoring_alerts")])
    for secret in (PASSWORD, SLACK_TOKEN):
        assert secret not in dumped and secret not in caplog.text
        assert secret not in repr(channels(controller.port, http_port))


def test_a_receiver_that_is_down_leaves_the_alert_undelivered_until_the_next_run(tmp_path, smtp, http_port,
                                                                                 warehouse_target):
    controller, _ = smtp
    wh = open_warehouse(warehouse_target)
    alert = drift_alert("2026-01-04")
    store(wh, alert)
    down = notify(wh, "flights", policy_of({}), channels(controller.port, http_port), attempts=3, backoff_s=0.01)
    failed = {o["channel"]: o["error"] for o in down if o["status"] == "failed"}
    assert set(failed) == {"slack", "webhook"} and all("unreachable" in e for e in failed.values())
    assert all(SLACK_TOKEN not in e and "127.0.0.1" not in e for e in failed.values())
    status = delivery_status(wh).set_index("channel")
    assert status.loc["slack", "status"] == "failed" and status.loc["slack", "attempts"] == 3
    assert status.loc["email", "status"] == "delivered"

    receiver = Receiver(http_port)  # the receiver is back
    try:
        again = notify(wh, "flights", policy_of({}), channels(controller.port, http_port), backoff_s=0.01)
    finally:
        receiver.close()
    assert sorted((o["channel"], o["status"]) for o in again) == [("slack", "delivered"), ("webhook", "delivered")]
    assert set(delivery_status(wh)["status"]) == {"delivered"}
    history = wh.read("SELECT channel, status FROM alert_deliveries WHERE channel = 'slack' ORDER BY attempted_at")
    assert history["status"].tolist() == ["failed", "delivered"]  # both attempts are kept


def test_duplicates_are_suppressed_and_acknowledged_alerts_stay_quiet(tmp_path, smtp, http_port, warehouse_target):
    controller, inbox = smtp
    receiver = Receiver(http_port)
    wh = open_warehouse(warehouse_target)
    first, same_next_day = drift_alert("2026-01-04"), drift_alert("2026-01-05")
    acked = drift_alert("2026-01-06", model="other")
    store(wh, first, acked)
    assert acknowledge_alert(wh, acked.alert_id, "ana")
    try:
        notify(wh, "flights", policy_of({}), channels(controller.port, http_port), backoff_s=0.01)
        store(wh, same_next_day)
        out = notify(wh, "flights", policy_of({}), channels(controller.port, http_port), backoff_s=0.01)
        quiet = notify(wh, "other", policy_of({}), channels(controller.port, http_port), backoff_s=0.01)
        fresh = notify(wh, "flights", policy_of({"dedupe_hours": 0}), channels(controller.port, http_port))
    finally:
        receiver.close()
    assert sorted((o["channel"], o["status"]) for o in out) == [
        ("email", "suppressed"), ("log", "delivered"), ("slack", "suppressed"), ("webhook", "suppressed")]
    assert quiet == [] and fresh == []  # settled deliveries are not re-sent, even without dedupe
    assert len(inbox.messages) == 1 and len(receiver.posts) == 2


def test_acknowledged_and_resolved_alerts_are_never_sent_even_when_raised_again(tmp_path, smtp, http_port,
                                                                                warehouse_target):
    controller, inbox = smtp
    receiver = Receiver(http_port)
    wh = open_warehouse(warehouse_target)
    ch = channels(controller.port, http_port)
    acked, gone, control = drift_alert("2026-01-04"), drift_alert("2026-01-05"), drift_alert("2026-01-06")
    policy = policy_of({"dedupe_hours": 0})  # no dedupe: only the status keeps them quiet
    store(wh, acked, gone)
    assert acknowledge_alert(wh, acked.alert_id, "ana")
    upsert_alerts(wh, [], asset_key="test", partition_key="2026-01-05|flights", run_id=2)  # gone is resolved
    store(wh, acked)  # a rerun raises the acknowledged one again: it stays acknowledged
    try:
        quiet = notify(wh, "flights", policy, ch, backoff_s=0.01)
        quiet_digest = send_digest(wh, {"flights": policy}, ch)
        store(wh, control)  # an open alert, to show the receivers hear what is sent
        heard = notify(wh, "flights", policy, ch, backoff_s=0.01)
        store(wh, gone)  # the resolved finding comes back: open again, and owed
        back = notify(wh, "flights", policy, ch, backoff_s=0.01)
    finally:
        receiver.close()
    assert quiet == [] and quiet_digest["sent"] == 0
    assert {o["alert_id"] for o in heard} == {control.alert_id}
    assert {o["alert_id"] for o in back} == {gone.alert_id}
    assert len(inbox.messages) == 2 and len(receiver.posts) == 4
    sent = wh.read("SELECT DISTINCT alert_id FROM alert_deliveries")["alert_id"].tolist()
    assert acked.alert_id not in sent
    assert all("2026-01-04" not in m for m in inbox.messages)
    assert all("2026-01-04" not in json.dumps(body) for _, body in receiver.posts)


def test_the_digest_leaves_out_acknowledged_and_resolved_warnings(tmp_path, smtp, warehouse_target):
    controller, inbox = smtp
    wh = open_warehouse(warehouse_target)
    ch = channels_from_env({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(controller.port), "SMTP_USER": "alerts",
                            "SMTP_PASSWORD": PASSWORD, "ALERT_EMAIL_RECIPIENTS": "oncall@example.com"})
    acked, gone, still = (drift_alert(d, "warning") for d in ("2026-01-04", "2026-01-05", "2026-01-06"))
    store(wh, acked, gone, still)
    assert acknowledge_alert(wh, acked.alert_id, "ana")
    upsert_alerts(wh, [], asset_key="test", partition_key="2026-01-05|flights", run_id=None)
    assert send_digest(wh, {"flights": policy_of({})}, ch) == {"sent": 1, "status": "delivered"}
    [message] = inbox.messages
    assert "[digest] 1 open warning" in message and "2026-01-06" in message
    assert "2026-01-04" not in message and "2026-01-05" not in message


def test_warnings_go_to_slack_at_once_and_to_the_daily_digest_info_to_the_log(tmp_path, smtp, http_port,
                                                                              warehouse_target):
    controller, inbox = smtp
    receiver = Receiver(http_port)
    wh = open_warehouse(warehouse_target)
    warning, info = drift_alert("2026-01-04", "warning"), drift_alert("2026-01-05", "info", model="quiet")
    store(wh, warning, info)
    ch = channels(controller.port, http_port)
    try:
        warned = notify(wh, "flights", policy_of({}), ch, backoff_s=0.01)
        logged = notify(wh, "quiet", policy_of({}), ch, backoff_s=0.01)
        digest = send_digest(wh, {"flights": policy_of({})}, ch)
        again = send_digest(wh, {"flights": policy_of({})}, ch)
    finally:
        receiver.close()
    assert sorted(o["channel"] for o in warned) == ["log", "slack"] and [o["channel"] for o in logged] == ["log"]
    assert digest == {"sent": 1, "status": "delivered"} and again["sent"] == 0
    assert len(inbox.messages) == 1 and "[digest] 1 open warning on" in inbox.messages[0]
    assert "dep_time: wasserstein 0.52" in inbox.messages[0]


def test_without_configured_channels_only_the_log_hears(tmp_path, warehouse_target):
    wh = open_warehouse(warehouse_target)
    store(wh, drift_alert("2026-01-04"))
    out = notify(wh, "flights", policy_of({}), channels_from_env({}))
    assert [(o["channel"], o["status"]) for o in out] == [("log", "delivered")]
    assert send_digest(wh, {}, channels_from_env({}))["status"] in ("nothing to send", "e-mail is not configured")
