"""Dagster's own processes in tests: the webserver or ``dagster dev`` on 127.0.0.1, its GraphQL,
and stopping the process group a test started (and only that)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """The ``data`` of a GraphQL answer (what the UI's pages read); an answer with errors fails."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_for_location(process: subprocess.Popen, port: int, what: str) -> list[dict]:
    """The repositories (name, location name) once the server answers with its code location
    loaded; ``what`` says where to look if the server exits first. The runner's timeout bounds it."""
    while True:
        assert process.poll() is None, f"the server exited: {what}"
        with contextlib.suppress(OSError):
            repos = graphql(port, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name "
                                  "location { name } } } } }")["repositoriesOrError"]
            if repos.get("nodes"):
                return repos["nodes"]
        time.sleep(1)


def default_signals() -> None:
    """``preexec_fn`` of a server: a shell that started pytest in the background may ignore
    SIGINT/SIGTERM, and children inherit that, so the server would ignore ``stop``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop(process: subprocess.Popen) -> None:
    """Dagster's own shutdown, as on Ctrl-C, sent to the process group the test started with
    ``start_new_session=True`` (webserver, daemon, code server); SIGKILL if it hangs."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
