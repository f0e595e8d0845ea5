"""The API tests' warehouse: a copy of the short story's (a real closed-loop run through the
``dagster`` CLI: five days of digits_classifier, drift from the third, alerts, a retraining),
with its own spool, served by a real uvicorn (``api_server``)."""

import pytest

from monitoring_pipeline_tests.short_story import copy_of, story_env


@pytest.fixture
def story(short_story, tmp_path):
    """``{"home", "env"}``: this test's own copy of the story's DAGSTER_HOME and warehouse
    (``env["MONITORING_WAREHOUSE"]``), and the environment a server or CLI on it needs."""
    home = copy_of(short_story, tmp_path / "home")
    env = {**story_env(home), "MONITORING_SPOOL": str(home / "spool")}
    return {"home": home, "env": env}
