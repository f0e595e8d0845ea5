"""schemathesis against the real server's ``/openapi.json``: every operation, a few hundred generated
requests (valid and invalid ones) with the bearer token, and each answer must be no 5xx, a status code
the schema documents for the operation, and a body (and content type) that matches its schema."""

from __future__ import annotations

import json
import urllib.request

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi import checks as openapi

from monitoring_pipeline_tests.api_server import TOKEN, api_server
from monitoring_pipeline_tests.receivers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def no_server_error(ctx, response, case):
    """schemathesis's ``not_a_server_error``, except the answer the issue asks of an unhealthy service:
    ``/api/ml/health``'s documented 503 whose body says unhealthy and why (the story's warehouse has
    models no run monitored yet: breast_cancer_classifier)."""
    if case.operation.path == "/api/ml/health" and response.status_code == 503:
        body = response.json()
        if body.get("healthy") is False and body.get("reasons"):
            return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, openapi.status_code_conformance, openapi.content_type_conformance,
          openapi.response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}  # per operation
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def documented_operations(schema: dict) -> set[str]:
    """``"METHOD /path"`` of every operation the OpenAPI document states."""
    return {f"{method.upper()} {path}" for path, item in schema.get("paths", {}).items()
            for method in item if method in HTTP_METHODS}


def fuzz(url: str, examples: dict = EXAMPLES) -> tuple[dict, dict]:
    """Run generated requests against every operation of ``url``'s schema. Returns the number of
    requests per ``"METHOD /path"``, and the failures: per operation and kind of failure (the failed
    checks' codes) how many requests and the first one's report (the checks' messages, the response
    and a curl command that repeats it)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    sent, failures = {}, {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        sent[label] = 0
        for mode, count in examples.items():
            try:
                requests(url, operation, label, mode, count, sent, failures)()
            except hypothesis.errors.Unsatisfiable:  # e.g. no invalid request exists for a GET without parameters
                pass
    return sent, failures


def requests(url: str, operation, label: str, mode: GenerationMode, count: int, sent: dict, failures: dict):
    """The hypothesis test that sends ``count`` generated requests of ``mode`` to ``operation``,
    counting them in ``sent`` and recording what fails in ``failures``."""
    headers = {"Authorization": f"Bearer {TOKEN}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def send(case):
        sent[label] += 1
        try:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
        except FailureGroup as group:
            kind = f"{label} [{' '.join(sorted({f.code for f in group.exceptions}))}]"
            n, report = failures.get(kind, (0, f"{mode.value} request: {group.message.strip()}"))
            failures[kind] = (n + 1, report)

    return send


def test_every_operation_answers_within_its_schema(story, tmp_path):
    # drift checks go to a port nothing listens on (never to a developer's own webserver on :3000)
    env = {**story["env"], "MONITORING_DAGSTER_URL": f"http://127.0.0.1:{free_port()}"}
    with api_server(env, log=tmp_path / "api.log") as url:
        with urllib.request.urlopen(f"{url}/openapi.json") as response:
            documented = documented_operations(json.load(response))
        sent, failures = fuzz(url)
    assert set(sent) == documented, "schemathesis did not test every operation of the schema"
    assert all(n > 0 for n in sent.values()), sent
    assert not failures, f"{sum(n for n, _ in failures.values())} of {sum(sent.values())} requests failed:\n\n" + \
        "\n\n".join(f"{kind}: {n} requests; the first one: {report}" for kind, (n, report) in failures.items())
