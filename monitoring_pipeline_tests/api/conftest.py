"""The API tests' warehouse: a copy of the short story's (a real closed-loop run through the
``dagster`` CLI: five days of digits_classifier, drift from the third, alerts, a retraining),
with its own spool, served by a real uvicorn (``api_server``).

``story`` is the DuckDB story; a module that runs on both backends marks itself with
``on_each_backend`` (indirect parametrization): then its PostgreSQL case serves a copy of the same
story run with its warehouse on PostgreSQL (``CREATE DATABASE ... TEMPLATE`` the story's)."""

import uuid

import pytest

from monitoring_pipeline_tests.conftest import backends_to_test
from monitoring_pipeline_tests.short_story import copy_of, run_short_story, story_env

STORY_DATABASE = "short_story"

on_each_backend = pytest.mark.parametrize("story", backends_to_test(), indirect=True)


@pytest.fixture(scope="session")
def short_story_postgres(tmp_path_factory, postgres_server):
    """The short story once per session with its warehouse in a PostgreSQL database of its own (the
    template of each test's copy)."""
    home = tmp_path_factory.mktemp("short_story_postgres") / "home"
    url = postgres_server.create_database(STORY_DATABASE)
    return {"home": home, "out": run_short_story(home, warehouse=url)}


@pytest.fixture
def story(request, tmp_path):
    """``{"home", "env", "origin"}``: this test's own copy of the story's DAGSTER_HOME and warehouse
    (``env["MONITORING_WAREHOUSE"]``), the environment a server or CLI on it needs, and the home of the
    story it copies (the paths its registry recorded)."""
    backend = getattr(request, "param", "duckdb")
    if backend == "duckdb":
        original = request.getfixturevalue("short_story")
        home = copy_of(original, tmp_path / "home")
        yield {"home": home, "env": {**story_env(home), "MONITORING_SPOOL": str(home / "spool")},
               "origin": original["home"]}
        return
    original = request.getfixturevalue("short_story_postgres")
    home = copy_of(original, tmp_path / "home")
    server, database = request.getfixturevalue("postgres_server"), f"story_{uuid.uuid4().hex[:12]}"
    server.copy_database(STORY_DATABASE, database)
    yield {"home": home, "env": {**story_env(home, server.url(database)), "MONITORING_SPOOL": str(home / "spool")},
           "origin": original["home"]}
    server.drop_database(database)
