"""A reference is stored whole or not at all, and one that is not whole is rebuilt."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.lib.monitors import Monitor, Source
from monitoring_pipeline.lib.references import (Reference, build_reference, ensure_reference, load_reference,
                                                store_reference)
from monitoring_pipeline.storage import open_warehouse, references, schema
from monitoring_pipeline.storage.references import ASSET, CALIBRATION, INPUTS, OUTPUTS
from monitoring_pipeline.storage.results import write_metrics
from monitoring_pipeline.storage.runs import insert_artifact, save_profile
from monitoring_pipeline.storage.schema import LATEST
from monitoring_pipeline_tests.warehouses import bare_connection

ROOT = Path(__file__).resolve().parents[2]
MONITOR = Monitor(name="bc", modality="tabular", reference=Source("bundled", dataset="breast_cancer"),
                  champion="logistic_regression")


@pytest.fixture(scope="module")
def built():
    return build_reference(MONITOR)


def stored_parts(wh) -> dict:
    """What the warehouse holds of the monitor's reference, part by part."""
    names = wh.read("SELECT name FROM artifacts WHERE asset_key = ? ORDER BY name", [ASSET])["name"].tolist()
    metrics = wh.read("SELECT metric_name FROM ml_performance_metrics WHERE asset_key = ?", [ASSET])
    marks = wh.read("SELECT count(*) AS n FROM reference_sets")["n"][0]
    return {"artifacts": names, "metrics": len(metrics), "complete": int(marks)}


def assert_complete(wh, ref, built):
    assert ref is not None and ref.outputs is not None
    assert ref.inputs == built.inputs and ref.outputs == built.outputs
    assert ref.metrics["accuracy"] == pytest.approx(built.metrics["accuracy"])
    assert ref.calibration is not None and (ref.calibration["y_true"] == built.calibration["y_true"]).all()
    assert stored_parts(wh) == {"artifacts": [CALIBRATION, INPUTS, OUTPUTS], "metrics": len(ref.metrics),
                                "complete": 1}


def test_a_reference_is_stored_whole_and_read_back(warehouse_target, built):
    wh = open_warehouse(warehouse_target)
    assert load_reference(wh, MONITOR) is None
    ref, was_built = ensure_reference(wh, MONITOR)
    assert was_built and ref == built
    assert_complete(wh, load_reference(wh, MONITOR), built)
    assert ensure_reference(wh, MONITOR)[1] is False  # stored once, then read


def test_a_store_that_fails_midway_leaves_nothing_and_the_next_run_rebuilds_it(warehouse_target, built, monkeypatch):
    wh = open_warehouse(warehouse_target)

    def fail(*args, **kwargs):  # the profiles are written; the metrics write fails
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(references, "write_metrics", fail)
        with pytest.raises(OSError, match="disk full"):
            ensure_reference(wh, MONITOR)
    assert stored_parts(wh) == {"artifacts": [], "metrics": 0, "complete": 0}
    assert load_reference(wh, MONITOR) is None
    ref, was_built = ensure_reference(wh, MONITOR)
    assert was_built
    assert_complete(wh, load_reference(wh, MONITOR), built)


def test_a_replacing_store_that_fails_keeps_the_previous_reference(warehouse_target, built, monkeypatch):
    wh = open_warehouse(warehouse_target)
    store_reference(wh, MONITOR, built, None)
    smaller = Reference(built.inputs, None, {"accuracy": 0.5}, built.version)
    with monkeypatch.context() as patch:
        patch.setattr(references, "write_metrics", lambda *a, **k: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            store_reference(wh, MONITOR, smaller, None)
    assert_complete(wh, load_reference(wh, MONITOR), built)
    store_reference(wh, MONITOR, smaller, None)  # a whole replacement leaves none of the old outputs
    ref = load_reference(wh, MONITOR)
    assert ref.outputs is None and ref.metrics == {"accuracy": 0.5}
    assert stored_parts(wh) == {"artifacts": [INPUTS], "metrics": 1, "complete": 1}


def test_a_process_killed_between_the_writes_leaves_nothing_and_the_reference_is_rebuilt(warehouse_target, built):
    killed = textwrap.dedent(f"""
        import os, signal
        from monitoring_pipeline.lib.references import ensure_reference
        from monitoring_pipeline.storage import open_warehouse, references
        from monitoring_pipeline_tests.storage.test_references import MONITOR

        def crash(conn, *args, **kwargs):  # the profiles and sample are written, the process dies
            assert conn.execute("SELECT count(*) FROM artifacts").fetchone()[0] == 3
            os.kill(os.getpid(), signal.SIGKILL)

        references.write_metrics = crash
        ensure_reference(open_warehouse({warehouse_target!r}), MONITOR)
    """)
    out = subprocess.run([sys.executable, "-c", killed], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    wh = open_warehouse(warehouse_target)
    assert stored_parts(wh) == {"artifacts": [], "metrics": 0, "complete": 0}
    assert load_reference(wh, MONITOR) is None
    assert ensure_reference(wh, MONITOR)[1]
    assert_complete(wh, load_reference(wh, MONITOR), built)


def test_an_inputs_only_reference_left_by_an_old_crash_is_rebuilt_whole(warehouse_target, built):
    wh = open_warehouse(warehouse_target)
    # what the three-transaction store left when it died after its first write
    save_profile(wh, built.inputs, INPUTS, run_id=None, model_name=MONITOR.name, model_version=MONITOR.champion,
                 asset_key=ASSET, partition_key=MONITOR.name)
    assert load_reference(wh, MONITOR) is None
    ref, was_built = ensure_reference(wh, MONITOR)
    assert was_built and ref.outputs is not None and "accuracy" in ref.metrics
    assert_complete(wh, load_reference(wh, MONITOR), built)


def test_the_migration_keeps_whole_old_references_and_leaves_cut_ones_to_be_rebuilt(warehouse_target, built,
                                                                                     monkeypatch):
    with monkeypatch.context() as patch, bare_connection(warehouse_target) as conn:  # the code before reference_sets
        cut = next(m[0] for m in schema.MIGRATIONS if m[1] == "complete references")
        before = [m for m in schema.MIGRATIONS if m[0] < cut]  # and none of the later ones
        patch.setattr(schema, "MIGRATIONS", before)
        patch.setattr(schema, "LATEST", before[-1][0])
        schema.migrate(conn)
        for name, parts in {"whole": 3, "no_metrics": 2, "inputs_only": 1}.items():
            keys = dict(run_id=None, model_name=name, model_version="v1", asset_key=ASSET, partition_key=name)
            insert_artifact(conn, "profile", INPUTS, payload=built.inputs.to_dict(), **keys)
            if parts > 1:
                insert_artifact(conn, "profile", OUTPUTS, payload=built.outputs.to_dict(), **keys)
            if parts > 2:
                write_metrics(conn, built.metrics, model_name=name, model_version="v1", data_split="reference",
                              window_start=None, window_end=None, estimated=False, asset_key=ASSET,
                              partition_key=name, run_id=None)
    wh = open_warehouse(warehouse_target)
    assert wh.read("SELECT max(version) AS v FROM schema_version")["v"][0] == LATEST
    whole = load_reference(wh, Monitor(name="whole", modality="tabular", reference=MONITOR.reference,
                                       champion="v1"))
    assert whole.inputs == built.inputs and whole.outputs == built.outputs
    assert whole.metrics["accuracy"] == pytest.approx(built.metrics["accuracy"])
    for name in ("no_metrics", "inputs_only"):
        assert load_reference(wh, Monitor(name=name, modality="tabular", reference=MONITOR.reference,
                                          champion="v1")) is None


RACER = textwrap.dedent("""
    import json, os, sys, time
    from monitoring_pipeline.lib.references import ensure_reference
    from monitoring_pipeline.storage import open_warehouse
    from monitoring_pipeline_tests.storage.test_references import MONITOR

    print("ready", flush=True)
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.005)
    ref, built = ensure_reference(open_warehouse(sys.argv[1]), MONITOR)
    print(json.dumps({"built": built, "inputs": ref.inputs.to_dict(), "metrics": ref.metrics}, default=str))
""")


def test_two_processes_racing_to_build_the_first_reference_end_with_one_whole_reference(tmp_path, warehouse_target,
                                                                                         built):
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, warehouse_target, str(go)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
              for _ in range(2)]
    for racer in racers:  # both imported and waiting: the race starts on a fresh file
        assert racer.stdout.readline().strip() == "ready", racer.stderr.read()[-2000:]
    go.touch()
    outputs = [racer.communicate(timeout=300) for racer in racers]
    assert [r.returncode for r in racers] == [0, 0], [err[-2000:] for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sorted(r["built"] for r in results) == [False, True]  # one stored it, the other used it
    wh = open_warehouse(warehouse_target)
    ref = load_reference(wh, MONITOR)
    assert_complete(wh, ref, built)
    assert all(r["inputs"] == json.loads(json.dumps(ref.inputs.to_dict(), default=str)) for r in results)


def test_a_calibration_sample_comes_back_as_arrays_and_a_frame(warehouse_target, built):
    wh = open_warehouse(warehouse_target)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"size": [1.5, np.nan, -2.0, 1e-9], "colour": pd.Series(["red", None, "blue", "1"], dtype=object)})
    embeddings = rng.normal(size=(4, 8)).astype(np.float32)
    embeddings[1, 2] = np.nan
    proba = rng.dirichlet(np.ones(3), size=4)
    tabular = {"task": "classification", "y_true": np.array(["a", "b", "c", "a"], dtype=object),
               "y_pred": np.array(["a", "c", "c", "b"], dtype=object), "y_score": proba, "classes": ["a", "b", "c"],
               "X": X, "n_rows": 4, "n_dropped": np.int64(1), "source": "out of fold"}
    for version, sample in {"v1": tabular, "v2": {**tabular, "X": embeddings}}.items():
        references.store_reference_set(wh, "m", version, inputs=built.inputs, outputs=built.outputs,
                                       metrics=built.metrics, run_id=None, calibration=sample)
    back = references.load_reference_set(wh, "m", "v1").calibration
    assert back["classes"] == ["a", "b", "c"] and back["source"] == "out of fold" and back["n_dropped"] == 1
    assert back["y_true"].dtype == object and back["y_true"].tolist() == ["a", "b", "c", "a"]
    assert np.array_equal(back["y_score"], proba)  # scores exactly
    assert isinstance(back["X"], pd.DataFrame) and list(back["X"].columns) == ["size", "colour"]
    assert back["X"]["colour"].tolist() == ["red", None, "blue", "1"] and back["X"]["colour"].dtype == object
    assert np.array_equal(back["X"]["size"].to_numpy(), X["size"].to_numpy(), equal_nan=True)
    embedded = references.load_reference_set(wh, "m", "v2").calibration["X"]
    assert embedded.dtype == np.float64 and embedded.shape == (4, 8) and np.isnan(embedded[1, 2])
    assert np.allclose(embedded, embeddings, rtol=1e-6, equal_nan=True)  # float32's 7 significant digits
    assert references.load_reference_set(wh, "m", "v2", calibration=False).calibration is None
    sample_id = wh.read("SELECT calibration_id FROM reference_sets WHERE model_version = 'v2'")["calibration_id"][0]
    assert wh.read("SELECT name FROM artifacts WHERE artifact_id = ?", [int(sample_id)])["name"][0] == CALIBRATION


def test_a_reference_stored_before_calibration_samples_loads_without_one(warehouse_target, built, monkeypatch):
    with monkeypatch.context() as patch, bare_connection(warehouse_target) as conn:  # the code before migration 8
        cut = next(m[0] for m in schema.MIGRATIONS if m[1] == "performance estimates")
        before = [m for m in schema.MIGRATIONS if m[0] < cut]
        patch.setattr(schema, "MIGRATIONS", before)
        patch.setattr(schema, "LATEST", before[-1][0])
        schema.migrate(conn)
        keys = dict(run_id=None, model_name=MONITOR.name, model_version=MONITOR.champion, asset_key=ASSET,
                    partition_key=MONITOR.name)
        inputs_id = insert_artifact(conn, "profile", INPUTS, payload=built.inputs.to_dict(), **keys)
        outputs_id = insert_artifact(conn, "profile", OUTPUTS, payload=built.outputs.to_dict(), **keys)
        write_metrics(conn, built.metrics, model_name=MONITOR.name, model_version=MONITOR.champion,
                      data_split="reference", window_start=None, window_end=None, estimated=False, asset_key=ASSET,
                      partition_key=MONITOR.name, run_id=None)
        conn.execute("INSERT INTO reference_sets (model_name, model_version, inputs_id, outputs_id) VALUES (?, ?, ?, ?)",
                     [MONITOR.name, MONITOR.champion, inputs_id, outputs_id])
    wh = open_warehouse(warehouse_target)
    assert wh.read("SELECT max(version) AS v FROM schema_version")["v"][0] == LATEST
    old = load_reference(wh, MONITOR)
    assert old.calibration is None and old.inputs == built.inputs and old.outputs == built.outputs
    ref, was_built = ensure_reference(wh, MONITOR)
    assert not was_built and ref.calibration is None
    store_reference(wh, MONITOR, built, None)  # rebuilt by reference_profile: now with its sample
    assert load_reference(wh, MONITOR).calibration["n_rows"] == built.calibration["n_rows"]
