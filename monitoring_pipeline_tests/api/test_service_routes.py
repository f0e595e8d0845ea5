"""/api/ml/health, /api/ml/metrics and /metrics on a real ``monitoring-pipeline serve`` over a copy of
the short story's warehouse and checkpoints, on both warehouse backends.

The monitors file served lists digits_classifier only: the story runs that model alone, so the
default file's breast_cancer_classifier has no run and would (rightly) make health 503.
"""

import hashlib
import json
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitoring_pipeline.lib.prometheus import last_success, write_metrics
from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.schema import LATEST
from monitoring_pipeline.storage.warehouse import is_url
from monitoring_pipeline_tests.api.conftest import on_each_backend
from monitoring_pipeline_tests.api_server import api_server, call
from monitoring_pipeline_tests.dagster_processes import ROOT
from monitoring_pipeline_tests.short_story import MODEL, story_env

pytestmark = [pytest.mark.slow, pytest.mark.integration]
SECRET_URL = "https://hooks.example.invalid/services/T000/B000/secret-4f9e1d"


def only_the_story_model(path: Path) -> Path:
    config = yaml.safe_load((ROOT / "data" / "monitors.yaml").read_text())
    config["monitors"] = [m for m in config["monitors"] if m["name"] == MODEL]
    path.write_text(yaml.safe_dump(config))
    return path


def _rows(env, sql: str, params=None) -> list[tuple]:
    frame = open_warehouse(env["MONITORING_WAREHOUSE"], read_only=True).read(sql, params)
    return [tuple(row) for row in frame.itertuples(index=False)]


def own_checkpoints(story) -> None:
    """Point the copy's model registry at the copy's checkpoints (the story registered its own paths)."""
    wh = open_warehouse(story["env"]["MONITORING_WAREHOUSE"])
    wh.write(lambda conn: conn.execute("UPDATE model_registry SET path = replace(path, ?, ?)",
                                       [str(story["origin"]), str(story["home"])]))
    paths = list(wh.read("SELECT path FROM model_registry")["path"])
    assert paths and all(p.startswith(str(story["home"])) for p in paths), paths


@pytest.fixture
def env(story, tmp_path):
    return {**story["env"], "MONITORING_MONITORS": str(only_the_story_model(tmp_path / "monitors.yaml")),
            "SLACK_WEBHOOK_URL": SECRET_URL}


@on_each_backend
def test_health_is_200_on_the_story(story, env, tmp_path):
    with api_server(env, log=tmp_path / "api.log") as url:
        status, body = call(url + "/api/ml/health")
        raw = urllib.request.urlopen(url + "/api/ml/health").read().decode()
    assert status == 200, body
    assert body["healthy"] is True and body["reasons"] == []
    assert body["warehouse"] == {"reachable": True, "schema_version": LATEST, "expected_schema_version": LATEST,
                                 "detail": None}
    assert body["alert_channels"] == {"configured": ["log", "slack"], "misconfigured": []}
    assert "secret-4f9e1d" not in raw and "hooks.example" not in raw  # names only, never a URL
    [model] = body["models"]
    [(champion,)] = _rows(env, "SELECT model_version FROM model_registry WHERE model_name = ? AND "
                               "stage = 'champion'", [MODEL])
    assert model["model"] == MODEL and model["healthy"] is True
    assert model["champion"]["source"] == "registry" and model["champion"]["version"] == champion
    assert model["champion"]["loaded"] is True, model["champion"]
    assert model["alert_channels"] == {"routes": ["log", "slack", "email", "webhook"], "configured": ["log", "slack"],
                                       "not_configured": ["email", "webhook"]}
    expected = last_success(open_warehouse(env["MONITORING_WAREHOUSE"], read_only=True))[MODEL]
    run = model["last_run"]
    assert abs(_unix(run["last_success"]) - expected) < 1e-3
    assert 0 <= run["age_hours"] < run["max_age_hours"] == 26 and run["fresh"] is True


def _unix(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@on_each_backend
def test_health_is_503_with_reasons_for_a_damaged_checkpoint_and_a_stale_run(story, env, tmp_path):
    own_checkpoints(story)
    [(version, path)] = _rows(env, "SELECT model_version, path FROM model_registry WHERE model_name = ? AND "
                                   "stage = 'champion'", [MODEL])
    weights = Path(path) / "model.pt"
    with api_server(env, log=tmp_path / "api.log") as url:
        assert call(url + "/api/ml/health")[0] == 200  # the checkpoint opens, and health remembers it

        status, body = call(url + "/api/ml/health?max_age_hours=0.0001")  # a run older than 0.36 s
        assert status == 503
        assert body["healthy"] is False and body["models"][0]["last_run"]["fresh"] is False
        assert body["reasons"] == [f"{MODEL}: the last successful monitoring run started "
                                   f"{body['models'][0]['last_run']['age_hours']:.2f} h ago, more than "
                                   "max_age_hours=0.0001"]
        assert call(url + "/api/ml/health?max_age_hours=0")[0] == 422

        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
        weights.write_bytes(bytes(data))
        assert hashlib.sha256(data).hexdigest() != _recorded(env, version)
        status, body = call(url + "/api/ml/health")
    assert status == 503, body
    [model] = body["models"]
    assert model["champion"]["loaded"] is False and model["healthy"] is False
    assert "sha256 differs from the model registry's record" in model["champion"]["detail"]
    assert body["reasons"] == [f"{MODEL}: champion not loaded: {model['champion']['detail']}"]
    assert set(body) == {"healthy", "checked_at", "warehouse", "alert_channels", "models", "reasons"}


def _recorded(env, version) -> str:
    [(digest,)] = _rows(env, "SELECT weights_sha256 FROM model_registry WHERE model_name = ? AND model_version = ?",
                        [MODEL, version])
    return digest


@on_each_backend
def test_metrics_json_holds_the_warehouse_rows(story, env, tmp_path):
    with api_server(env, log=tmp_path / "api.log") as url:
        status, body = call(url + "/api/ml/metrics")
    assert status == 200, body
    rows = [(start.strftime("%Y-%m-%dT%H:%M:%SZ"), *rest) for start, *rest in _rows(
        env, """SELECT window_start, metric_name, metric_value, model_version
                FROM ml_performance_metrics WHERE model_name = ? AND data_split = 'production'
                AND NOT estimated AND metric_name IN ('latency_p50_ms', 'latency_p95_ms',
                                                      'latency_p99_ms', 'error_rate')""", [MODEL])]
    [model] = body["models"]
    assert model["model"] == MODEL
    served = {(h["window_start"], name): h[name] for h in model["history"]
              for name in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate")}
    assert served == {(start, name): value for start, name, value, _ in rows}
    assert len(model["history"]) == 5 and [h["window_start"] for h in model["history"]] == sorted(
        {start for start, *_ in rows})
    latest = max(start for start, *_ in rows)
    assert model["current"] == model["history"][-1] and model["current"]["window_start"] == latest
    assert model["current"]["model_version"] == {v for s, _, _, v in rows if s == latest}.pop()


@on_each_backend
def test_prometheus_endpoint_serves_the_textfile(story, env, tmp_path):
    textfile = write_metrics(open_warehouse(env["MONITORING_WAREHOUSE"], read_only=True), tmp_path / "monitoring.prom")
    with api_server(env, log=tmp_path / "api.log") as url:
        with urllib.request.urlopen(url + "/metrics") as response:
            kind, text = response.headers["Content-Type"], response.read().decode()
    assert kind.startswith("text/plain; version=0.0.4")

    def samples(exposition: str) -> set:
        return {(s.name, tuple(sorted(s.labels.items())), s.value)
                for family in text_string_to_metric_families(exposition) for s in family.samples}

    served, written = samples(text), samples(textfile.read_text())
    assert served == written
    names = {name for name, _, _ in served}
    assert {"ml_monitoring_accuracy", "ml_monitoring_latency_ms", "ml_monitoring_drift_max",
            "ml_monitoring_last_success_timestamp_seconds"} <= names


def test_health_without_a_warehouse_is_503_in_the_same_shape(tmp_path, warehouse_target):
    """No DuckDB file yet, or a PostgreSQL database without the warehouse's tables."""
    env = {**story_env(tmp_path), "MONITORING_WAREHOUSE": warehouse_target,
           "MONITORING_SPOOL": str(tmp_path / "spool"),
           "MONITORING_MONITORS": str(only_the_story_model(tmp_path / "monitors.yaml"))}
    with api_server(env, log=tmp_path / "api.log") as url:
        status, body = call(url + "/api/ml/health")
    assert status == 503, body
    assert set(body) == {"healthy", "checked_at", "warehouse", "alert_channels", "models", "reasons"}
    assert body["warehouse"]["reachable"] is False and body["warehouse"]["schema_version"] is None
    assert body["reasons"] == [f"the warehouse cannot answer: {body['warehouse']['detail']}"]
    named = "not a monitoring warehouse" if is_url(warehouse_target) else warehouse_target  # a file: its path
    assert named in body["warehouse"]["detail"]
    assert "not-checked" not in json.dumps(body)  # a URL's password never shows
    assert [m["model"] for m in body["models"]] == [MODEL] and body["models"][0]["healthy"] is False
