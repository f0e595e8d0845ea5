"""A window's estimate is stored with its interval, replaced by the realized value when labels
arrive, and kept beside it in performance_estimates."""

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.estimates import estimate_history, record_window_performance
from monitoring_pipeline.storage.results import replace_metrics

ROOT = Path(__file__).resolve().parents[2]
DAY = datetime(2026, 3, 2)


def estimate(accuracy=0.71, low=0.64, high=0.78, reliable=True, reason=""):
    """An estimate_performance result as the shared API describes it (numpy numbers included)."""
    entry = lambda value, lo, hi: {"estimate": value, "low": lo, "high": hi, "method": "pape",  # noqa: E731
                                   "reliable": reliable, "reason": reason}
    return {"accuracy": entry(np.float64(accuracy), low, high), "f1_macro": entry(0.66, 0.58, 0.74),
            "roc_auc": {"estimate": None, "low": None, "high": None, "method": "pape", "reliable": False,
                        "reason": "roc_auc needs class scores; only the top-class confidence was logged"},
            "calibration": {"method": "isotonic", "ece_before": np.float64(0.08), "ece_after": 0.01,
                            "n_reference": np.int64(500)},
            "support": {"domain_auc": 0.61, "ess": 410.5, "ess_share": float("nan")},
            "reliable": reliable, "reason": reason, "method": "pape", "task": "classification",
            "n_current": 300, "n_reference": 500}


def keys(day=DAY, model="m", version="v1"):
    return dict(model_name=model, model_version=version, window_start=day, window_end=day + timedelta(days=1),
                asset_key="eval_metrics", partition_key=f"{day:%Y-%m-%d}|{model}", run_id=None)


def record(wh, realized=None, estimate=None, n_labeled=0, **kw):
    return record_window_performance(wh, realized=realized, estimate=estimate, n_rows=300, n_labeled=n_labeled,
                                     **keys(**kw))


def metric_rows(wh, partition="2026-03-02|m"):
    return wh.read("""SELECT metric_name, metric_value, estimated, ci_low, ci_high, reliable, method,
                             reliability_reason, model_version
                      FROM ml_performance_metrics WHERE partition_key = ? ORDER BY metric_name, estimated""",
                   [partition])


def estimate_rows(wh, partition="2026-03-02|m"):
    return wh.read("SELECT * FROM performance_estimates WHERE partition_key = ? ORDER BY metric_name", [partition])


@pytest.fixture
def wh(warehouse_target):
    return open_warehouse(warehouse_target)


def test_an_estimate_is_stored_with_its_interval_and_an_undefined_metric_keeps_its_reason(wh):
    assert record(wh, estimate=estimate()) == {"metrics": 2, "estimates": 3, "realized": 0}
    rows = metric_rows(wh).set_index("metric_name")
    assert list(rows.index) == ["accuracy", "f1_macro"]  # roc_auc has no estimate: no metric row
    acc = rows.loc["accuracy"]
    assert bool(acc["estimated"]) and bool(acc["reliable"]) and acc["method"] == "pape"
    assert (acc["metric_value"], acc["ci_low"], acc["ci_high"]) == pytest.approx((0.71, 0.64, 0.78))
    assert acc["reliability_reason"] is None
    stored = estimate_rows(wh).set_index("metric_name")
    assert list(stored.index) == ["accuracy", "f1_macro", "roc_auc"]
    auc = stored.loc["roc_auc"]
    assert auc["estimate"] != auc["estimate"] and not bool(auc["reliable"])  # NULL estimate, kept
    assert auc["reliability_reason"].startswith("roc_auc needs class scores")
    assert stored["realized"].isna().all() and stored["realized_at"].isna().all() and stored["n_labeled"].isna().all()
    details = json.loads(stored.loc["accuracy", "details"])
    assert details["calibration"] == {"method": "isotonic", "ece_before": 0.08, "ece_after": 0.01, "n_reference": 500}
    assert details["support"]["ess_share"] is None and details["support"]["domain_auc"] == 0.61
    assert int(stored.loc["accuracy", "n_rows"]) == 300


def test_an_unreliable_estimate_carries_the_overall_reason(wh):
    why = "inputs outside the reference: a classifier tells the window from it with AUC 0.99"
    result = estimate(accuracy=0.91, reliable=False, reason=why)
    result["accuracy"]["reason"] = ""  # the entry says nothing of its own: the overall reason stands in
    record(wh, estimate=result)
    acc = metric_rows(wh).set_index("metric_name").loc["accuracy"]
    assert not bool(acc["reliable"]) and acc["reliability_reason"] == why and acc["metric_value"] == pytest.approx(0.91)


def test_labels_replace_the_estimate_and_the_history_keeps_both(wh):
    record(wh, estimate=estimate())
    realized = {"accuracy": 0.69, "f1_macro": 0.61, "roc_auc": None, "per_class": {"0": {"f1": 0.5}}, "n": True}
    for _ in range(2):  # re-running the labeled window changes nothing
        assert record(wh, realized=realized, n_labeled=280, version="v2") == {"metrics": 2, "estimates": 0,
                                                                               "realized": 2}
        rows = metric_rows(wh)
        assert rows[["metric_name", "estimated"]].values.tolist() == [["accuracy", False], ["f1_macro", False]]
        assert rows["ci_low"].isna().all() and rows["reliable"].isna().all() and rows["method"].isna().all()
        assert rows.set_index("metric_name").loc["accuracy", "metric_value"] == pytest.approx(0.69)
        stored = estimate_rows(wh).set_index("metric_name")
        assert len(stored) == 3 and set(stored["model_version"]) == {"v1"}  # the estimate stays as it was made
        assert stored.loc["accuracy", ["estimate", "realized"]].tolist() == pytest.approx([0.71, 0.69])
        assert int(stored.loc["accuracy", "n_labeled"]) == 280 and pd.notna(stored.loc["accuracy", "realized_at"])
        assert stored.loc["roc_auc", "realized"] != stored.loc["roc_auc", "realized"]  # undefined: stays NULL
    history = estimate_history(wh, "m")
    assert len(history) == 1
    row = history.iloc[0]
    assert row["error"] == pytest.approx(0.02) and bool(row["covered"]) and bool(row["reliable"])
    assert row["window"] == DAY and row["ci_low"] == pytest.approx(0.64) and row["ci_high"] == pytest.approx(0.78)
    errors = wh.read("SELECT metric_name, error, covered FROM estimate_errors ORDER BY metric_name")
    assert errors["metric_name"].tolist() == ["accuracy", "f1_macro"]
    assert errors["error"].tolist() == pytest.approx([0.02, 0.05]) and errors["covered"].tolist() == [True, True]


def test_an_estimate_made_with_labels_in_hand_is_stored_with_its_realized_value(wh):
    out = record(wh, realized={"accuracy": 0.9}, estimate=estimate(accuracy=0.5, low=0.45, high=0.55), n_labeled=40)
    assert out == {"metrics": 1, "estimates": 3, "realized": 1}
    assert metric_rows(wh)[["metric_name", "estimated"]].values.tolist() == [["accuracy", False]]
    row = estimate_history(wh, "m").iloc[0]
    assert row["realized"] == pytest.approx(0.9) and not bool(row["covered"]) and int(row["n_labeled"]) == 40


def test_a_new_estimate_replaces_the_windows_old_one_and_no_stale_row_survives(wh):
    replace_metrics(wh, {"accuracy": 0.95}, estimated=True, data_split="production",  # an old-style estimated row
                    **{k: v for k, v in keys(version="v0").items()})
    record(wh, estimate=estimate(accuracy=0.8))
    record(wh, estimate=estimate(accuracy=0.7))
    assert metric_rows(wh)["metric_value"].tolist() == pytest.approx([0.7, 0.66])
    assert estimate_rows(wh)["estimate"].tolist()[:2] == pytest.approx([0.7, 0.66])
    assert len(estimate_rows(wh)) == 3


def test_two_windows_and_two_models_do_not_touch_each_other(wh):
    other_day = DAY + timedelta(days=1)
    record(wh, estimate=estimate(accuracy=0.8))
    record(wh, estimate=estimate(accuracy=0.6), day=other_day)
    record(wh, estimate=estimate(accuracy=0.5), model="n")
    record(wh, realized={"accuracy": 0.75}, n_labeled=100)  # labels for the first window only
    assert metric_rows(wh, "2026-03-03|m")[["metric_name", "metric_value", "estimated"]].values.tolist() == [
        ["accuracy", pytest.approx(0.6), True], ["f1_macro", pytest.approx(0.66), True]]
    assert metric_rows(wh, "2026-03-02|n")["estimated"].all()
    history = estimate_history(wh, "m")
    assert history["window"].tolist() == [DAY, other_day]
    assert history["realized"].tolist()[0] == pytest.approx(0.75) and history["realized"].isna().tolist() == [
        False, True]
    assert estimate_history(wh, "n")["realized"].isna().all()


def test_labels_without_a_stored_estimate_write_the_realized_metrics_only(wh):
    assert record(wh, realized={"accuracy": 0.8}, n_labeled=50) == {"metrics": 1, "estimates": 0, "realized": 0}
    assert estimate_history(wh, "m").empty


def test_an_estimate_without_metric_entries_or_method_is_refused(wh):
    with pytest.raises(ValueError, match="no metric entries"):
        record(wh, estimate={"reliable": True, "method": "cbpe"})
    nameless = estimate()
    del nameless["method"], nameless["accuracy"]["method"]
    with pytest.raises(ValueError, match="'accuracy' names no method"):
        record(wh, estimate=nameless)
    with pytest.raises(ValueError, match="realized must be a dict"):
        record(wh, realized=0.9)
    assert wh.read("SELECT count(*) AS n FROM performance_estimates")["n"][0] == 0


WRITER = textwrap.dedent("""
    import os, sys, time
    from datetime import datetime, timedelta
    from monitoring_pipeline.storage import open_warehouse
    from monitoring_pipeline.storage.estimates import record_window_performance
    from monitoring_pipeline_tests.storage.test_estimates import estimate

    model, target, go = sys.argv[1], sys.argv[2], sys.argv[3]
    wh = open_warehouse(target)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    for i in range(12):
        day = datetime(2026, 3, 1) + timedelta(days=i)
        keys = dict(model_name=model, model_version="v1", window_start=day, window_end=day + timedelta(days=1),
                    asset_key="eval_metrics", partition_key=f"{day:%Y-%m-%d}|{model}", run_id=None, n_rows=300)
        record_window_performance(wh, realized=None, estimate=estimate(accuracy=0.5 + i / 100), n_labeled=0, **keys)
        if i % 2 == 0:  # labels arrive for every other window
            record_window_performance(wh, realized={"accuracy": 0.6 + i / 100}, estimate=None, n_labeled=200, **keys)
    print("done", flush=True)
""")


def test_concurrent_writers_in_two_processes_lose_no_row(tmp_path, warehouse_target):
    go = tmp_path / "go"
    open_warehouse(warehouse_target).read("SELECT 1")  # created and migrated before the race
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, model, warehouse_target, str(go)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT) for model in ("a", "b")]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()[-2000:]
    go.touch()
    outputs = [writer.communicate() for writer in writers]
    assert [w.returncode for w in writers] == [0, 0], [err[-2000:] for _, err in outputs]
    wh = open_warehouse(warehouse_target)
    for model in ("a", "b"):
        rows = wh.read("""SELECT window_start, estimated, metric_value FROM ml_performance_metrics
                          WHERE model_name = ? AND metric_name = 'accuracy' ORDER BY window_start""", [model])
        assert len(rows) == 12 and rows["estimated"].tolist() == [i % 2 == 1 for i in range(12)]
        assert rows["metric_value"].tolist() == pytest.approx([(0.6 if i % 2 == 0 else 0.5) + i / 100
                                                               for i in range(12)])
        history = estimate_history(wh, model)
        assert len(history) == 12 and history["estimate"].tolist() == pytest.approx([0.5 + i / 100 for i in range(12)])
        assert history["realized"].notna().tolist() == [i % 2 == 0 for i in range(12)]
    assert wh.read("SELECT count(*) AS n FROM performance_estimates")["n"][0] == 2 * 12 * 3


def test_retraining_observations_carry_the_estimate_until_labels_arrive(wh):
    from monitoring_pipeline.core.retraining import decide_retraining
    from monitoring_pipeline.storage.retraining import observations

    days = [DAY + timedelta(days=i) for i in range(4)]
    for i, d in enumerate(days):
        record(wh, estimate=estimate(accuracy=0.71, low=0.64, high=0.78, reliable=i != 0,
                                     reason="" if i else "inputs outside the reference"), day=d)
    replace_metrics(wh, {"accuracy": 0.5}, estimated=True, data_split="production",  # no reliability flag stored
                    **keys(day=DAY + timedelta(days=4)))
    obs = observations(wh, "m", baseline_accuracy=0.9, version="v1")
    assert [(o.window, o.accuracy, o.estimated_accuracy, o.estimate_high, o.estimate_reliable) for o in obs] == [
        ("2026-03-02", None, pytest.approx(0.71), pytest.approx(0.78), False),
        ("2026-03-03", None, pytest.approx(0.71), pytest.approx(0.78), True),
        ("2026-03-04", None, pytest.approx(0.71), pytest.approx(0.78), True),
        ("2026-03-05", None, pytest.approx(0.71), pytest.approx(0.78), True),
        ("2026-03-06", None, pytest.approx(0.5), None, False)]
    assert obs[1].estimate_low == pytest.approx(0.64) and obs[1].baseline_accuracy == 0.9
    decision = decide_retraining("m", obs[:4], [], obs[3].at)
    assert decision.launch and decision.trigger == "estimated_performance_degradation"
    assert decision.run_key.endswith("|2026-03-03")  # the unreliable first window does not count
    assert decide_retraining("m", obs, [], obs[-1].at).trigger is None  # an unflagged estimate breaks it
    record(wh, realized={"accuracy": 0.88}, n_labeled=200, day=days[3])  # labels arrive for 03-05
    labeled = observations(wh, "m", baseline_accuracy=0.9, version="v1")[3]
    assert (labeled.accuracy, labeled.estimated_accuracy, labeled.estimate_reliable) == (pytest.approx(0.88), None,
                                                                                          False)
