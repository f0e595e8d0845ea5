"""Baselines set by hand (lib.baselines.rebaseline) on a temporary warehouse, without Dagster."""

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from monitoring_pipeline.lib import loop
from monitoring_pipeline.demo.replay import replay_window
from monitoring_pipeline.lib.baselines import MAX_DAYS, MIN_ROWS, BaselineError, as_datetime, rebaseline
from monitoring_pipeline.lib.monitors import load_monitors
from monitoring_pipeline.lib.references import (baseline_label, baseline_of, build_reference, concept_reference,
                                                load_reference, profile_inputs)
from monitoring_pipeline.lib.sources import labels_of, serving_monitor
from monitoring_pipeline.models import read_card
from monitoring_pipeline.storage import open_warehouse, registry
from monitoring_pipeline.storage.baselines import baseline_changes, load_training_reference
from monitoring_pipeline.storage.traffic import read_log_window
from monitoring_pipeline_tests.lib.test_loop import ROWS, monitor, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path, monkeypatch, warehouse_target):
    """A warehouse whose champion v1 (logistic regression, breast cancer) served 4 days of 60 requests."""
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    wh, m = open_warehouse(warehouse_target), monitor()
    loop.ensure_champion(wh, m)
    serve(wh, m, 4)
    return wh, m


def test_a_baseline_of_served_days_becomes_the_champions_reference_and_is_recorded(served):
    wh, m = served
    before = load_reference(wh, serving_monitor(wh, m))
    result = rebaseline(wh, m, basis="windows", start=date(2026, 1, 2), end=date(2026, 1, 4), set_by="alice",
                        note="the new sensor's regime")
    assert (result["version"], result["rows"], result["set_by"]) == ("v1", 2 * ROWS, "alice")

    traffic = read_log_window(wh, m.name, datetime(2026, 1, 2), datetime(2026, 1, 4))  # read apart from rebaseline
    ref = load_reference(wh, serving_monitor(wh, m))
    assert ref.inputs.n_rows == ref.outputs.n_rows == len(traffic) == 2 * ROWS
    assert ref.inputs.to_dict() == profile_inputs(m, traffic, list(before.inputs.features)).to_dict()
    labeled = traffic[traffic["label"].notna()]
    assert ref.metrics["accuracy"] == pytest.approx(accuracy_score(labels_of(labeled["label"]),
                                                                   labels_of(labeled["prediction"])))
    assert ref.inputs.n_rows != before.inputs.n_rows  # it replaced the training reference

    changes = baseline_changes(wh, m.name).to_dict("records")
    assert len(changes) == 1
    row = changes[0]
    assert (row["model_version"], row["basis"], row["rows"], row["set_by"], row["note"]) == \
        ("v1", "windows", 2 * ROWS, "alice", "the new sensor's regime")
    assert (row["window_start"], row["window_end"]) == (datetime(2026, 1, 2), datetime(2026, 1, 4))
    assert row["set_at"] == result["set_at"]
    assert baseline_of(wh, m.name, "v1")["set_by"] == "alice"
    assert baseline_label(wh, m.name, "v1") == "windows [2026-01-02, 2026-01-04) (set by alice)@v1"
    # the feature-label relation is judged against the same days' labeled traffic
    frame, basis = concept_reference(wh, serving_monitor(wh, m))
    assert len(frame) == len(labeled) and basis == "windows [2026-01-02, 2026-01-04)"


def test_a_training_baseline_restores_what_the_version_was_trained_on(served):
    wh, m = served
    kept = load_training_reference(wh, m.name, "v1")
    card = read_card(registry.champion(wh, m.name)["path"])
    assert kept is not None and kept.inputs.n_rows == card["training_rows"]

    rebaseline(wh, m, basis="windows", start=date(2026, 1, 1), end=date(2026, 1, 3), set_by="alice")
    result = rebaseline(wh, m, basis="training", set_by="bob")
    assert (result["rows"], result["start"], result["end"]) == (card["training_rows"], None, None)
    ref = load_reference(wh, serving_monitor(wh, m))
    assert ref.inputs.to_dict() == kept.inputs.to_dict() and ref.outputs.to_dict() == kept.outputs.to_dict()
    assert ref.metrics == pytest.approx(kept.metrics)
    assert baseline_label(wh, m.name, "v1") == "training (set by bob)@v1"
    assert baseline_changes(wh, m.name)["set_by"].tolist() == ["bob", "alice"]  # newest first


def test_a_baseline_that_cannot_be_set_is_refused_naming_why_and_writes_nothing(served, tmp_path, more_targets):
    wh, m = served
    before = load_reference(wh, serving_monitor(wh, m))
    with pytest.raises(BaselineError, match=r"served 0 requests in \[2026-02-01, 2026-02-03\)"):
        rebaseline(wh, m, basis="windows", start=date(2026, 2, 1), end=date(2026, 2, 3), set_by="alice")
    with pytest.raises(BaselineError, match=f"a baseline needs at least {MIN_ROWS}") as short:
        rebaseline(wh, m, basis="windows", start=datetime(2026, 1, 2), end=datetime(2026, 1, 2, 6), set_by="alice")
    assert "[2026-01-02, 2026-01-02 06:00)" in str(short.value)
    with pytest.raises(BaselineError, match="start must be before end"):
        rebaseline(wh, m, basis="windows", start=date(2026, 1, 3), end=date(2026, 1, 2), set_by="alice")
    with pytest.raises(BaselineError, match="'training' takes no start or end"):
        rebaseline(wh, m, basis="training", start=date(2026, 1, 3), set_by="alice")
    with pytest.raises(BaselineError, match="set_by"):
        rebaseline(wh, m, basis="training", set_by=" ")
    assert baseline_changes(wh, m.name).empty
    assert load_reference(wh, serving_monitor(wh, m)) == before

    empty = open_warehouse(more_targets("empty"))
    with pytest.raises(BaselineError, match="no champion"):
        rebaseline(empty, m, basis="training", set_by="alice")


def test_a_configured_model_takes_a_baseline_of_its_replayed_days_and_its_reference_data_back(tmp_path,
                                                                                              warehouse_target):
    """A model monitors.yaml names (no registry): its traffic is replayed day by day; its training
    reference is built again from the reference data."""
    config = load_monitors(ROOT / "data" / "monitors.yaml")
    m = config.monitor("breast_cancer_classifier")
    wh = open_warehouse(warehouse_target)
    result = rebaseline(wh, m, basis="windows", start=datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=2))),
                        end=date(2026, 1, 4), set_by="carol")
    # 2026-01-02 00:00+02:00 is 2026-01-01 22:00 UTC: the last two hours of the first day are in
    replayed = pd.concat([replay_window(m.name, m.traffic.dataset, date(2026, 1, d), m.traffic.rows_per_day,
                                        [m.champion, m.candidate]) for d in (1, 2, 3)])
    replayed = replayed[(pd.to_datetime(replayed["ts"]) >= datetime(2026, 1, 1, 22))
                        & (replayed["model_version"] == m.champion)]
    assert result["start"] == datetime(2026, 1, 1, 22) and result["rows"] == len(replayed) > 2 * m.traffic.rows_per_day
    assert load_reference(wh, m).inputs.n_rows == len(replayed)
    assert baseline_label(wh, m.name, m.champion) == \
        f"windows [2026-01-01 22:00, 2026-01-04) (set by carol)@{m.champion}"

    rebaseline(wh, m, basis="training", set_by="carol")
    assert load_reference(wh, m).inputs.to_dict() == build_reference(m).inputs.to_dict()
    with pytest.raises(BaselineError, match=f"spans 400 days of bundled traffic; a baseline reads at most {MAX_DAYS}"):
        rebaseline(wh, m, basis="windows", start=date(2026, 1, 1), end=date(2027, 2, 5), set_by="carol")
    with pytest.raises(BaselineError, match="out of range in UTC"):
        as_datetime(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))
