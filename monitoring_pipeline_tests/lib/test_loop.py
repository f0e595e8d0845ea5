"""The loop without Dagster: what serving logs, and what a retraining may train on."""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.lib import loop
from monitoring_pipeline.lib.monitors import parse_monitors
from monitoring_pipeline.models import read_card
from monitoring_pipeline.storage import open_warehouse, registry
from monitoring_pipeline.storage.replay import forget_model

ROWS = 60


def monitor(name="served", **overrides):
    entry = {"name": name, "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"},
             "traffic": {"source": "warehouse", "rows_per_day": ROWS},
             "model": {"kind": "logistic_regression", "holdout_days": 1}, **overrides}
    return parse_monitors({"start_date": "2026-01-01", "monitors": [entry]}).monitors[0]


def serve(wh, m, days):
    for i in range(days):
        rows, time_of_day = loop.traffic_day(m, i)
        day = pd.Timestamp("2026-01-01") + pd.Timedelta(days=i)
        loop.serve_day(wh, m, rows, day + time_of_day, label_delay=timedelta(hours=1), prefix=f"{m.name}-{i}")


def test_a_retraining_never_trains_on_a_request_it_is_judged_on(tmp_path, monkeypatch, warehouse_target):
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    wh, m = open_warehouse(warehouse_target), monitor()
    loop.ensure_champion(wh, m)
    serve(wh, m, 5)  # 300 requests from 171 rows: the traffic repeats
    result = loop.retrain(wh, m, datetime(2026, 1, 6), reason="test")
    n = len(bundled("breast_cancer").current)
    # Labels come an hour late: the last requests of the latest day are not labeled yet.
    labeled = np.linspace(0, 86_399, ROWS) + 3600 <= 86_400
    holdout = {(4 * ROWS + k) % n for k in range(ROWS) if labeled[k]}
    fresh = [(d * ROWS + k) % n for d in range(4) for k in range(ROWS)]
    kept = sum(1 for row in fresh if row not in holdout)
    assert kept < len(fresh)  # the repeat is real
    assert result["holdout_rows"] == len(holdout) == labeled.sum() < ROWS
    assert result["training_rows"] == len(bundled("breast_cancer").reference) + kept
    card = read_card(registry.champion(wh, m.name)["path"] if result["promoted"] else
                     registry.versions(wh, m.name).query("model_version == 'v2'")["path"].iloc[0])
    assert card["training_rows"] == result["training_rows"]


def test_images_and_texts_are_logged_with_an_input_hash_of_their_own(tmp_path):
    digits = monitor("d", modality="vision", input_column="image",
                     reference={"source": "bundled", "dataset": "digits"}, model={"kind": "image_cnn"})
    frame = bundled("digits").current.iloc[[0, 1, 0]].reset_index(drop=True)
    hashes = loop.input_hashes(digits, frame, ["image"])
    assert hashes[0] == hashes[2] != hashes[1]
    texts = monitor("t", modality="text", input_column="text",
                    reference={"source": "bundled", "dataset": "trump_tweets"}, model={"kind": "text_classifier"})
    tweets = pd.DataFrame({"text": ["a b", "a c", "a b"]})
    assert len(set(loop.input_hashes(texts, tweets, ["text"]))) == 2


def test_forgetting_a_model_clears_only_that_model(tmp_path, monkeypatch, warehouse_target):
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    wh = open_warehouse(warehouse_target)
    kept, gone = monitor("kept"), monitor("gone")
    for m in (kept, gone):
        loop.ensure_champion(wh, m)
        serve(wh, m, 1)
    deleted = forget_model(wh, "gone")
    assert deleted["inference_log"] == ROWS and deleted["labels"] == ROWS and deleted["model_registry"] == 1
    for table in ("inference_log", "model_registry", "model_registry_events", "artifacts"):
        names = set(wh.read(f"SELECT DISTINCT model_name FROM {table}")["model_name"])
        assert names == {"kept"}, table
    assert int(wh.read("SELECT count(*) AS n FROM labels")["n"][0]) == ROWS


def fail_quality_gate(wh, m, day: str) -> None:
    """What window_gate stores for a window whose data failed its quality checks."""
    from monitoring_pipeline.storage.runs import save_artifact

    gates = {"data_quality_passed": {"passed": False}, "no_drift_alert": {"passed": True}}
    save_artifact(wh, "report", "window_gate", payload={"gates": gates}, model_name=m.name,
                  asset_key="window_gate", partition_key=f"{day}|{m.name}")


def test_a_window_that_failed_its_quality_gate_is_neither_trained_on_nor_a_judge(tmp_path, monkeypatch, more_targets):
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    outcomes = {}
    for case, bad in (("clean", []), ("middle", ["2026-01-03"]), ("latest", ["2026-01-05"])):
        wh, m = open_warehouse(more_targets(case)), monitor()
        loop.ensure_champion(wh, m, root=tmp_path / case)
        serve(wh, m, 5)
        for day in bad:
            fail_quality_gate(wh, m, day)
        fail_quality_gate(wh, m, "2025-12-01")  # outside the recent days: not reported
        outcomes[case] = loop.retrain(wh, m, datetime(2026, 1, 6), reason="test", root=tmp_path / case)
        assert outcomes[case]["excluded_days"] == bad
    clean, middle, latest = outcomes["clean"], outcomes["middle"], outcomes["latest"]
    assert middle["holdout_rows"] == clean["holdout_rows"]
    assert middle["training_rows"] < clean["training_rows"]  # day 3's requests are not trained on
    assert "of 2026-01-04 onwards" in latest["verdict"]  # the bad latest day does not judge the challenger
    assert "of 2026-01-05 onwards" in clean["verdict"]


def test_traffic_days_are_drawn_across_the_whole_split_not_in_its_stored_order():
    # Digits are stored grouped by writer: served in that order, a day came from a few writers.
    m = monitor(name="digits_days", modality="vision", input_column="image",
                reference={"source": "bundled", "dataset": "digits"}, model={"kind": "image_cnn"})
    current = bundled("digits").current
    days = [loop.traffic_day(m, i)[0] for i in range(3)]
    first = days[0]["label"].tolist()
    assert first != current["label"].iloc[:ROWS].tolist()
    # one shuffle, consecutive blocks: the days of one pass over the split never repeat an image
    keys = [tuple(np.asarray(x).ravel().round(6)) for d in days for x in d["image"]]
    assert len(set(keys)) == 3 * ROWS or len(current) < 3 * ROWS
    assert [loop.traffic_day(m, 0)[0]["label"].tolist()] == [first]  # seeded: the same day every time
