"""Every test writes its Prometheus file, HTML reports and API spool under its own tmp_path, never
into the checkout's data/ folder (subprocesses inherit the variables); ``smtp`` is a real
SMTP receiver on 127.0.0.1 for the alert tests."""

import pytest
from aiosmtpd.controller import Controller

from monitoring_pipeline_tests.receivers import Inbox, free_port
from monitoring_pipeline_tests.short_story import run_short_story


@pytest.fixture(autouse=True)
def _outputs_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITORING_METRICS", str(tmp_path / "metrics" / "monitoring.prom"))
    monkeypatch.setenv("MONITORING_REPORTS", str(tmp_path / "reports"))
    # A window of warehouse traffic drains the API's spool first: never the checkout's data/spool.
    monkeypatch.setenv("MONITORING_SPOOL", str(tmp_path / "spool"))


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=inbox,
                            auth_require_tls=False)
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture(scope="session")
def short_story(tmp_path_factory):
    """One short story's DAGSTER_HOME and the CLI's output, made once for the tests that read it
    (each serves its own copy: short_story.copy_of)."""
    home = tmp_path_factory.mktemp("short_story") / "home"
    return {"home": home, "out": run_short_story(home)}
