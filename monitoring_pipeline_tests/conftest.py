"""Every test writes its Prometheus file, HTML reports and API spool under its own tmp_path, never
into the checkout's data/ folder (subprocesses inherit the variables); ``smtp`` is a real
SMTP receiver on 127.0.0.1 for the alert tests.

The warehouse backends: ``postgres_server`` is one throwaway PostgreSQL server per session,
``postgres_url`` a fresh empty database on it per test, and ``warehouse_target`` runs a test
once per backend named in $MONITORING_TEST_BACKENDS (default ``duckdb,postgres``): a DuckDB
file path in tmp_path, or a fresh database's URL (both as text, for ``open_warehouse``)."""

import os

import pytest
from aiosmtpd.controller import Controller

from monitoring_pipeline_tests.postgres_server import PostgresServer
from monitoring_pipeline_tests.receivers import Inbox, free_port

BACKENDS_ENV = "MONITORING_TEST_BACKENDS"
KNOWN_BACKENDS = ("duckdb", "postgres")


def backends_to_test() -> list[str]:
    """The backends $MONITORING_TEST_BACKENDS names (default both); ValueError for an unknown one."""
    chosen = [b.strip() for b in os.environ.get(BACKENDS_ENV, ",".join(KNOWN_BACKENDS)).split(",") if b.strip()]
    unknown = [b for b in chosen if b not in KNOWN_BACKENDS]
    if unknown or not chosen:
        raise ValueError(f"{BACKENDS_ENV} must name some of {KNOWN_BACKENDS}, got {os.environ.get(BACKENDS_ENV)!r}")
    return chosen


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A new, empty database for this test (dropped after it)."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture(params=backends_to_test())
def warehouse_target(request, tmp_path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "w.duckdb")
    return request.getfixturevalue("postgres_url")
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
