"""workspace.yaml loads in the Dagster webserver, which serves every asset, check and job."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from monitoring_pipeline_tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[1]
QUERY = """{ assetNodes { assetKey { path } }
  repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } schedules { name } } } } }"""


@pytest.mark.integration
def test_the_ui_serves_the_definitions(tmp_path):
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb")}
    server = subprocess.Popen([str(Path(sys.executable).parent / "dagster-webserver"), "-w",
                               str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and body is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                                 data=json.dumps({"query": QUERY}).encode(),
                                                 headers={"Content-Type": "application/json"})
                body = json.loads(urllib.request.urlopen(request, timeout=10).read())
                if not body["data"]["assetNodes"]:
                    body = None  # the code location is still loading
                    time.sleep(1)
            except OSError:
                time.sleep(1)
        assert body is not None, "the webserver did not answer"
        assets = {node["assetKey"]["path"][0] for node in body["data"]["assetNodes"]}
        assert {"reference_profile", "traffic_window", "data_drift_report", "monitoring_alerts",
                "tier5_report"} <= assets
        repo = body["data"]["repositoriesOrError"]["nodes"][0]
        assert {"monitoring_job", "tier5_monitoring_job", "closed_loop_job",
                "acknowledge_alert_job"} <= {j["name"] for j in repo["jobs"]}
        assert {s["name"] for s in repo["schedules"]} == {"data_drift_every_6_hours", "daily_monitoring", "daily_alert_digest",
                                                           "weekly_retention"}
    finally:
        server.terminate()
        server.wait(timeout=30)
