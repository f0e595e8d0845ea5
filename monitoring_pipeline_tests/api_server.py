"""A real ``monitoring-pipeline serve`` (uvicorn) on a free 127.0.0.1 port, for the API tests."""

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from monitoring_pipeline_tests.dagster_processes import BIN, stop
from monitoring_pipeline_tests.receivers import free_port

TOKEN = "test-token-6f1c2a"  # the token the API tests' servers take


@contextlib.contextmanager
def api_server(env: dict, *, token: str | None = TOKEN, host: str = "127.0.0.1", log: Path | None = None):
    """Start the API with ``env`` (MONITORING_WAREHOUSE, MONITORING_SPOOL, ...), yield its base URL once
    it answers, and stop it (SIGINT, then SIGKILL). Its output goes to ``log`` when given."""
    port = free_port()
    env = {**env, **({"MONITORING_API_TOKEN": token} if token else {})}
    if not token:
        env.pop("MONITORING_API_TOKEN", None)
    out = open(log, "w") if log else subprocess.DEVNULL
    process = subprocess.Popen([str(BIN / "monitoring-pipeline"), "serve", "--host", host, "--port", str(port)],
                               env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{host}:{port}"
    try:
        while True:
            assert process.poll() is None, f"the API server exited with {process.returncode}" + (
                f": {Path(log).read_text()[-2000:]}" if log else "")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/openapi.json", timeout=5):
                    break
            time.sleep(0.2)
        yield url
    finally:
        stop(process)
        if log:
            out.close()


def call(url: str, method: str = "GET", body=None, token: str | None = TOKEN) -> tuple[int, dict | str]:
    """``(status, parsed JSON body or text)`` of one request; errors are answers, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    text = raw.decode()
    return status, (json.loads(text) if "json" in kind and text else text)
