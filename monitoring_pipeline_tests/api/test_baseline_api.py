"""POST /api/ml/baseline end to end: a real API server and the real ``dagster`` CLI on a copy of the
short story (digits_classifier rotated 30 degrees from 2026-01-03; its champion v3, promoted on the
rotated days, is judged against the labeled rotated day it was validated on)."""

import json
import subprocess

import pytest
import yaml

from monitoring_pipeline.models import read_card
from monitoring_pipeline.storage import Warehouse, registry
from monitoring_pipeline_tests.api_server import api_server, call
from monitoring_pipeline_tests.dagster_processes import BIN
from monitoring_pipeline_tests.short_story import MODEL

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def dagster(story, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "monitoring_pipeline", *args],
                          cwd=story["home"], env=story["env"], capture_output=True, text=True)


def simulate(story, start: str, days: int, first_data_day: int) -> None:
    """Rotated traffic (as the story's drift) served by today's champion."""
    config = story["home"] / "simulate.yaml"
    config.write_text(yaml.safe_dump({"ops": {"simulate_traffic": {"config": {
        "model": MODEL, "days": days, "start_date": start, "first_data_day": first_data_day,
        "drift": {"kind": "rotation", "size": 30.0, "day": 0}}}}}))
    out = dagster(story, "-j", "simulate_traffic_job", "-c", str(config))
    assert out.returncode == 0, out.stderr[-3000:]


def monitor_day(story, day: str) -> list[dict]:
    """monitoring_job for the day's window; its data and prediction drift rows. (A failed drift gate
    fails the run, so its exit status is not asserted: the rows it stored are.)"""
    out = dagster(story, "-j", "monitoring_job", "--tags", json.dumps({"dagster/partition": f"{day}|{MODEL}"}))
    rows = drift_rows(story, day)
    assert rows, f"monitoring_job stored no drift rows for {day}: {out.stderr[-3000:]}"
    return rows


def drift_rows(story, day: str) -> list[dict]:
    wh = Warehouse(story["env"]["MONITORING_WAREHOUSE"])
    return wh.read("""SELECT drift_type, feature_name, effect_size, drift_detected, model_version, baseline_period
                      FROM ml_drift_history WHERE model_name = ? AND partition_key = ? AND drift_type <> 'concept'
                      ORDER BY drift_type, feature_name""", [MODEL, f"{day}|{MODEL}"]).to_dict("records")


def flagged(rows: list[dict]) -> int:
    return sum(bool(r["drift_detected"]) for r in rows)


def test_a_baseline_set_through_the_api_judges_the_next_window(story, tmp_path):
    wh = Warehouse(story["env"]["MONITORING_WAREHOUSE"])
    champion = registry.champion(wh, MODEL)
    version = champion["model_version"]
    simulate(story, "2026-01-06", 3, 5)  # served by the champion: rotated, as the days it was promoted on
    before = monitor_day(story, "2026-01-06")
    assert {r["baseline_period"] for r in before} == {f"reference@{version}"}

    with api_server(story["env"], log=tmp_path / "api.log") as url:
        # Back to its training data (the unrotated reference plus the first days' traffic): rotation shows again.
        status, body = call(f"{url}/api/ml/baseline", "POST", {"model": MODEL, "basis": "training", "by": "alice",
                                                               "note": "compare with what it learned"})
        assert status == 201, body
        training_rows = read_card(champion["path"])["training_rows"]
        assert (body["version"], body["basis"], body["rows"], body["set_by"]) == \
            (version, "training", training_rows, "alice")
        assert body["reference"]["rows"] == training_rows and "embedding" in body["reference"]["features"]
        trained = monitor_day(story, "2026-01-07")

        # The rotated days it served: the rotation is the norm now.
        status, body = call(f"{url}/api/ml/baseline", "POST", {"model": MODEL, "basis": "windows",
                                                               "start": "2026-01-05", "end": "2026-01-07", "by": "bob"})
        assert status == 201, body
        assert (body["rows"], body["start"], body["end"]) == (120, "2026-01-05T00:00:00Z", "2026-01-07T00:00:00Z")
        assert body["reference"]["rows"] == 120 and body["reference"]["calibration_rows"] > 0
        windows = monitor_day(story, "2026-01-08")

        status, history = call(f"{url}/api/ml/baseline/{MODEL}")
        assert status == 200, history
        assert [(c["set_by"], c["basis"], c["rows"], c["model_version"]) for c in history["changes"]] == \
            [("bob", "windows", 120, version), ("alice", "training", training_rows, version)]
        assert history["changes"][1]["note"] == "compare with what it learned"
        assert history["changes"][0]["set_at"] > history["changes"][1]["set_at"]
        assert history["current"]["set_by"] == "bob" and history["champion"] == version

        # refused: no token, a wrong one, bad bodies naming the field, an unknown model, a range it never served
        good = {"model": MODEL, "basis": "windows", "start": "2026-01-05", "end": "2026-01-07", "by": "bob"}
        assert call(f"{url}/api/ml/baseline", "POST", good, token=None)[0] == 401
        assert call(f"{url}/api/ml/baseline", "POST", good, token="wrong")[0] == 401
        for bad, field in (({**good, "end": "2026-01-04"}, "end"), ({**good, "basis": "training"}, "start"),
                           ({**good, "by": ""}, "by"), ({**good, "basis": "latest"}, "basis"),
                           ({k: v for k, v in good.items() if k != "start"}, "start"),
                           ({**good, "start": "yesterday"}, "start")):
            status, body = call(f"{url}/api/ml/baseline", "POST", bad)
            assert status == 422 and any(e["loc"][-1] == field or field in e["loc"] for e in body["detail"]), body
        status, body = call(f"{url}/api/ml/baseline", "POST", {**good, "model": "nobody"})
        assert status == 404 and "nobody" in body["detail"]
        assert call(f"{url}/api/ml/baseline/nobody")[0] == 404
        status, body = call(f"{url}/api/ml/baseline", "POST", {**good, "start": "2026-01-01", "end": "2026-01-03"})
        assert status == 409 and "served 0 requests in [2026-01-01, 2026-01-03)" in body["detail"], body
        assert len(call(f"{url}/api/ml/baseline/{MODEL}")[1]["changes"]) == 2  # refusals recorded nothing

    assert {r["baseline_period"] for r in trained} == {f"training (set by alice)@{version}"}
    assert {r["baseline_period"] for r in windows} == {f"windows [2026-01-05, 2026-01-07) (set by bob)@{version}"}
    # Judged against the unrotated training data, the rotated day drifts; against rotated days, less.
    assert flagged(trained) > flagged(before) and flagged(trained) > flagged(windows)
    # The history already stored keeps what it was judged against.
    assert drift_rows(story, "2026-01-06") == before and drift_rows(story, "2026-01-07") == trained
    print(f"flagged of {len(before)}, {len(trained)}, {len(windows)} rows: validation reference {flagged(before)}, "
          f"training {flagged(trained)}, windows {flagged(windows)}")
