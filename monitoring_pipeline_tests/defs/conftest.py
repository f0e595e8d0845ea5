"""Fixtures of the Dagster-layer tests: monitors, warehouses and traffic files on tmp_path.

``warehouse`` runs a test once per warehouse backend (the root conftest's ``warehouse_target``:
a DuckDB file in tmp_path, or a fresh PostgreSQL database); ``module_warehouse_target`` is the
same for a module's shared, expensive warehouses (``module_targets``), ``more_targets`` for a
test that needs several."""

from datetime import date, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from monitoring_pipeline.definitions import build_definitions
from monitoring_pipeline.defs.partitions import register_days, window_key
from monitoring_pipeline.defs.resources import WarehouseResource
from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.demo.models import bundled_model, model_inputs
from monitoring_pipeline.lib.monitors import parse_monitors
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.warehouse import is_url
from monitoring_pipeline_tests.conftest import backends_to_test

MODEL = "breast_cancer_classifier"
DAY = date(2026, 1, 5)


def bundled_monitor(**overrides) -> dict:
    monitor = {
        "name": MODEL, "modality": "tabular", "task": "classification",
        "reference": {"source": "bundled", "dataset": "breast_cancer"},
        "traffic": {"source": "bundled", "dataset": "breast_cancer", "rows_per_day": 60},
        "champion": "logistic_regression", "candidate": "random_forest",
        "thresholds": {"slo": {"accuracy": 0.8, "latency_p95_ms": 1000, "error_rate": 0.05}},
    }
    monitor.update(overrides)
    return monitor


def config_of(*monitors, start="2026-01-01"):
    return parse_monitors({"start_date": start, "monitors": list(monitors)})


@pytest.fixture
def warehouse(warehouse_target):
    return WarehouseResource(path=warehouse_target)


@pytest.fixture(scope="module", params=backends_to_test())
def module_targets(request, tmp_path_factory):
    """``make(name)``: a warehouse target a whole module shares (an expensive one made once), of each
    backend in turn: a DuckDB path, or a PostgreSQL database dropped after the module."""
    server = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    made = []

    def make(name: str) -> str:
        if server is None:
            return str(tmp_path_factory.mktemp(name) / "w.duckdb")
        made.append(server.create_database())
        return made[-1]

    yield make
    for url in made:
        server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def more_targets(warehouse_target, tmp_path, request):
    """``make(name)``: another warehouse target of ``warehouse_target``'s backend, for a test that
    needs several (a DuckDB file beside it, or another fresh PostgreSQL database)."""
    server = request.getfixturevalue("postgres_server") if is_url(warehouse_target) else None
    made = []

    def make(name: str) -> str:
        if server is None:
            return str(tmp_path / f"{name}.duckdb")
        made.append(server.create_database())
        return made[-1]

    yield make
    for url in made:
        server.drop_database(url.rsplit("/", 1)[1])


def run_window(config, warehouse, day=DAY, model=MODEL, job="monitoring_job", instance=None):
    defs = build_definitions(config, warehouse)
    instance = instance or dg.DagsterInstance.ephemeral()
    register_days(instance, [day])  # execute_in_process refuses a day the instance does not know
    return defs.resolve_job_def(job).execute_in_process(
        partition_key=window_key(day, model), instance=instance, raise_on_error=False)


def count(wh: Warehouse, table: str, where: str = "true") -> int:
    return int(wh.read(f"SELECT count(*) AS n FROM {table} WHERE {where}")["n"][0])


def traffic_file(path, day=DAY, n=200, *, shift=None, drop=None, scale=None, candidate_error=None,
                 labels=True, seed=0):
    """A CSV of a day's traffic: real breast-cancer rows scored by the bundled models."""
    dataset = bundled("breast_cancer")
    rng = np.random.default_rng(seed)
    rows = dataset.current.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    if shift:
        for feature, factor in shift.items():
            rows[feature] = rows[feature] * factor
    inputs = model_inputs(dataset, rows)
    start = datetime(day.year, day.month, day.day)
    frames = []
    for version in ("logistic_regression", "random_forest"):
        model = bundled_model("breast_cancer", version)
        proba = model.predict_proba(inputs)
        pred = model.classes_[proba.argmax(axis=1)]
        if version == "random_forest" and candidate_error:
            flip = rng.random(n) < candidate_error
            pred = np.where(flip, 1 - pred, pred)
        frame = rows.drop(columns="label").copy()
        frame.insert(0, "ts", [start + timedelta(seconds=int(s)) for s in np.linspace(0, 86_000, n)])
        frame.insert(1, "request_id", [f"r{i}" for i in range(n)])
        frame.insert(2, "model_version", version)
        frame["prediction"] = pred
        frame["confidence"] = proba.max(axis=1)
        frame["latency_ms"] = rng.uniform(1, 5, n)
        frame["error"] = None
        frame["label"] = rows["label"].to_numpy() if labels else None
        frames.append(frame)
    traffic = pd.concat(frames, ignore_index=True)
    if drop:
        traffic = traffic.drop(columns=drop)
    if scale:
        traffic.loc[:5, scale] = 1e6
    traffic.to_csv(path, index=False)
    return path


def file_monitor(path, **overrides):
    return bundled_monitor(traffic={"source": "file", "path": str(path)}, **overrides)


def write_monitors(path, *monitors, start="2026-01-01"):
    path.write_text(yaml.safe_dump({"start_date": start, "monitors": list(monitors)}))
    return path
