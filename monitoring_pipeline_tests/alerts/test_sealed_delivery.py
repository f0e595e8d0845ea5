"""Delivery is bounded and sealed, against real receivers on 127.0.0.1: a Slack URL
without a scheme, and a receiver that trickles one byte at a time, each fail their own
channel only, are recorded with a redacted reason, and leave no secret in the output,
the warehouse or Dagster's event log."""

import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from aiosmtpd.controller import Controller

from monitoring_pipeline.alerts import channels_from_env, policy_of
from monitoring_pipeline.definitions import build_definitions
from monitoring_pipeline.defs.alerting import deliver
from monitoring_pipeline.defs.resources import WarehouseResource
from monitoring_pipeline.lib.notify import notify
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.deliveries import delivery_status
from monitoring_pipeline_tests.receivers import SlowLoris
from monitoring_pipeline_tests.defs.conftest import MODEL, bundled_monitor, config_of, file_monitor, traffic_file, \
    write_monitors
from monitoring_pipeline_tests.lib.test_notify import drift_alert, store
from monitoring_pipeline_tests.receivers import PASSWORD, Inbox, Receiver, free_port

SECRET = "SECRETTOKEN123"
SCHEMELESS = f"hooks.example.invalid/services/T000/B000/{SECRET}"
SECRETS = (SECRET, PASSWORD, "/services/T000/B000")
DAGSTER = str(Path(sys.executable).parent / "dagster")


@pytest.fixture
def receiver():
    server = Receiver(free_port())
    yield server
    server.close()


def settings(smtp_port: int, slack: str, hook: str, **more) -> dict:
    return {"SLACK_WEBHOOK_URL": slack, "ALERT_WEBHOOK_URL": hook, "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port), "SMTP_USER": "alerts", "SMTP_PASSWORD": PASSWORD,
            "ALERT_EMAIL_RECIPIENTS": "oncall@example.com", **more}


def warehouse_text(path) -> str:
    """Every row of every table and view of the warehouse, as text."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        names = conn.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        assert len(names) > 5  # the schema is there: the search below searched something
        return "\n".join(repr(conn.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()) for schema, name in names)
    finally:
        conn.close()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked: ...{text[max(text.find(secret) - 200, 0):][:400]}..."


def test_a_slack_url_without_scheme_fails_alone_and_its_token_is_written_nowhere(
        tmp_path, smtp, receiver, monkeypatch, capfd, caplog):
    controller, inbox = smtp
    hook = f"http://127.0.0.1:{receiver.server.server_port}/hook"
    for name, value in settings(controller.port, SCHEMELESS, hook).items():
        monkeypatch.setenv(name, value)  # the step reads its channels from the environment
    caplog.set_level(logging.DEBUG)
    wh = Warehouse(tmp_path / "w.duckdb")
    store(wh, drift_alert("2026-01-04"))

    outcomes, _ = deliver(wh, config_of(bundled_monitor()), "flights", logging.getLogger("step"))

    assert sorted((o["channel"], o["status"]) for o in outcomes) == [
        ("email", "delivered"), ("log", "delivered"), ("slack", "failed"), ("webhook", "delivered")]
    assert len(inbox.messages) == 1 and "[critical] DRIFT_DETECTED flights" in inbox.messages[0]
    assert [path for path, _ in receiver.posts] == ["/hook"]
    slack = delivery_status(wh).set_index("channel").loc["slack"]
    assert slack["last_error"] == "SLACK_WEBHOOK_URL is not an http(s) URL with a host (its value is not shown)"
    assert slack["attempts"] == 1  # a wrong setting is not retried
    assert "not delivered to slack: SLACK_WEBHOOK_URL is not an http(s) URL" in caplog.text
    captured = capfd.readouterr()
    assert_no_secret(captured.out, captured.err, caplog.text, warehouse_text(tmp_path / "w.duckdb"))
    for path in tmp_path.rglob("*"):  # the warehouse file, the metrics file, anything else written
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("slow", ["slack", "email"])
def test_a_receiver_that_trickles_bytes_is_cut_at_the_deadline_and_the_others_deliver(
        tmp_path, smtp, receiver, slow):
    controller, inbox = smtp
    port = receiver.server.server_port
    loris = SlowLoris(b"HTTP/1.1 200 OK\r\nX-Slow: " if slow == "slack" else b"220 slow.example.invalid ")
    env = settings(loris.port if slow == "email" else controller.port,
                   f"http://127.0.0.1:{loris.port if slow == 'slack' else port}/services/T000/B000/{SECRET}",
                   f"http://127.0.0.1:{port}/hook", ALERT_DELIVERY_DEADLINE_S="1")
    wh = Warehouse(tmp_path / "w.duckdb")
    store(wh, drift_alert("2026-01-04"), drift_alert("2026-01-05"))  # two alerts owed on each channel
    try:
        outcomes = notify(wh, "flights", policy_of({"dedupe_hours": 0}), channels_from_env(env), attempts=2,
                          backoff_s=0.01)
        loris.wait_all_closed()
    finally:
        loris.close()

    by_channel = {}
    for o in outcomes:
        by_channel.setdefault(o["channel"], []).append(o["status"])
    assert by_channel.pop(slow) == ["failed", "failed"]
    assert by_channel == {c: ["delivered", "delivered"] for c in {"log", "slack", "email", "webhook"} - {slow}}
    rows = wh.read("SELECT alert_id, attempts, error FROM alert_deliveries WHERE channel = ? ORDER BY attempts DESC",
                   [slow])
    first, second = rows.to_dict(orient="records")
    assert first["attempts"] == 2 and first["error"] == "deadline of 1s exceeded (connect, send and read together)"
    # The receiver did not answer in time: the second alert does not wait for it again.
    assert second["attempts"] == 0 and second["error"].startswith("not tried: deadline of 1s exceeded")
    assert loris.connections == 2 and loris.cut_by_client == 2 and loris.gave_up == 0
    assert len(inbox.messages) == (0 if slow == "email" else 2)
    assert sorted(path.split("/")[1] for path, _ in receiver.posts) == (
        ["hook", "hook", "services", "services"] if slow == "email" else ["hook", "hook"])
    assert_no_secret(warehouse_text(tmp_path / "w.duckdb"), json.dumps(outcomes))


class Refusing:
    """An HTTP server that answers every POST with the status its path names (/503/...)."""

    def __init__(self):
        self.hits = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                hits.append(self.path)
                self.send_response(int(self.path.split("/")[1]), f"No {SECRET}")  # a reason that quotes a secret
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class RejectingInbox(Inbox):
    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode())
        return "554 5.7.1 rejected as spam"


def test_an_http_status_or_an_smtp_refusal_is_a_failed_delivery_retried_only_when_it_may_pass(tmp_path):
    inbox = RejectingInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=inbox,
                            auth_require_tls=False)
    controller.start()
    refusing = Refusing()
    base = f"http://127.0.0.1:{refusing.server.server_port}"
    env = settings(controller.port, f"{base}/503/services/T000/B000/{SECRET}", f"{base}/400/hook")
    wh = Warehouse(tmp_path / "w.duckdb")
    store(wh, drift_alert("2026-01-04"))
    try:
        outcomes = notify(wh, "flights", policy_of({}), channels_from_env(env), attempts=3, backoff_s=0.01)
    finally:
        refusing.close()
        controller.stop()
    assert sorted((o["channel"], o["status"]) for o in outcomes) == [
        ("email", "failed"), ("log", "delivered"), ("slack", "failed"), ("webhook", "failed")]
    status = delivery_status(wh).set_index("channel")
    assert status.loc["slack", "last_error"] == "HTTP 503 No <redacted>" and status.loc["slack", "attempts"] == 3
    assert status.loc["webhook", "last_error"] == "HTTP 400 No <redacted>" and status.loc["webhook", "attempts"] == 1
    assert status.loc["email", "last_error"] == "SMTP SMTPDataError (554)" and status.loc["email", "attempts"] == 1
    assert sorted(refusing.hits) == ["/400/hook"] + [f"/503/services/T000/B000/{SECRET}"] * 3
    assert len(inbox.messages) == 1 and inbox.logins == ["alerts"]  # a 5xx reply is final: not sent again
    assert_no_secret(warehouse_text(tmp_path / "w.duckdb"))


def test_the_run_failure_alert_keeps_the_step_and_error_class_not_the_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", SCHEMELESS)  # configured, and wrong: its own delivery fails too
    warehouse = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    defs = build_definitions(config_of(bundled_monitor()), warehouse)

    @dg.op
    def send_alerts():
        raise ValueError(f"unknown url type: '{SCHEMELESS}'\nand a second line with password=hunter2")

    @dg.job(name="monitoring_job", tags={"monitoring/model": MODEL})
    def failing_job():
        send_alerts()

    instance = dg.DagsterInstance.ephemeral()
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    sensor = defs.resolve_sensor_def("monitoring_run_failure_sensor")
    sensor(dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id),
        dagster_event=failure, resources={"warehouse": warehouse}).for_run_failure())

    [message] = warehouse.get().read("SELECT message FROM ml_monitoring_alerts WHERE alert_type = 'SLO_BREACH'")[
        "message"].tolist()
    assert message == (f"monitoring_job run {result.run_id[:8]} failed: send_alerts: ValueError: "
                       "unknown url type: '<redacted URL>'")
    assert delivery_status(warehouse.get()).set_index("channel").loc["slack", "status"] == "failed"
    assert_no_secret(warehouse_text(tmp_path / "w.duckdb"))
    assert "hunter2" not in warehouse_text(tmp_path / "w.duckdb")


@pytest.mark.integration
def test_through_the_dagster_cli_the_token_is_in_no_output_event_or_table(tmp_path, smtp, receiver):
    controller, inbox = smtp
    day = "2026-01-05"
    traffic = traffic_file(tmp_path / "traffic.csv", shift={"mean radius": 1.4, "mean perimeter": 1.4,
                                                            "mean area": 1.8})  # a drift alert: critical
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb"),
           "MONITORING_MONITORS": str(write_monitors(tmp_path / "monitors.yaml", file_monitor(traffic))),
           "MONITORING_MODELS": str(tmp_path / "models"),
           **settings(controller.port, SCHEMELESS, f"http://127.0.0.1:{receiver.server.server_port}/hook")}
    out = subprocess.run([DAGSTER, "job", "execute", "-m", "monitoring_pipeline", "-j", "monitoring_job",
                          "--tags", json.dumps({"dagster/partition": f"{day}|{MODEL}"})],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode != 0 and "no_drift_alert" in out.stdout + out.stderr  # the drift gate fails the run

    wh = Warehouse(tmp_path / "w.duckdb")
    status = delivery_status(wh).set_index("channel")
    assert status.loc["email", "status"] == "delivered" and status.loc["webhook", "status"] == "delivered"
    assert status.loc["slack", "status"] == "failed"
    assert status.loc["slack", "last_error"] == \
        "SLACK_WEBHOOK_URL is not an http(s) URL with a host (its value is not shown)"
    assert inbox.messages and "DRIFT_DETECTED" in inbox.messages[0] and receiver.posts
    assert "not delivered to slack" in out.stdout + out.stderr  # the step said so, redacted

    instance = dg.DagsterInstance.from_config(str(home))
    [run] = instance.get_runs()
    events = "\n".join(repr(record) for record in instance.all_logs(run.run_id))
    assert "not delivered to slack" in events  # the event log holds the warning, without the token
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files)  # the run and event storage were searched
    assert_no_secret(out.stdout, out.stderr, events, warehouse_text(tmp_path / "w.duckdb"))
    for path in files:  # the sqlite storages and the compute logs
        assert SECRET.encode() not in path.read_bytes(), path
