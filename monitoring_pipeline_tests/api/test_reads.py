"""The read routes and the acknowledge route against a real ``monitoring-pipeline serve`` on a copy of the
short story's warehouse (five real days of digits_classifier, drift from 2026-01-03, alerts raised), and
reads while another process holds the warehouse for writing; each on both warehouse backends."""

import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest

from monitoring_pipeline.storage import open_warehouse
from monitoring_pipeline.storage.estimates import record_window_performance
from monitoring_pipeline_tests.api_server import api_server, call
from monitoring_pipeline_tests.api.conftest import on_each_backend
from monitoring_pipeline_tests.dagster_processes import BIN

pytestmark = [pytest.mark.slow, pytest.mark.integration, on_each_backend]

MODEL = "digits_classifier"
READS = ["/monitoring/drift/status", "/monitoring/drift/history?limit=20", f"/monitoring/drift/{MODEL}",
         f"/monitoring/performance/{MODEL}", "/monitoring/alerts", "/api/ml/alerts"]


def _query(story, sql: str, params=None) -> list[tuple]:
    """Rows of the warehouse itself (read-only; waits while the server copies it)."""
    frame = open_warehouse(story["env"]["MONITORING_WAREHOUSE"], timeout=60, read_only=True).read(sql, params)
    return [tuple(row) for row in frame.itertuples(index=False)]


def _cli(story, *args) -> str:
    out = subprocess.run([str(BIN / "monitoring-pipeline"), "alerts", *args], env=story["env"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _estimate_a_window_and_break_a_number(story) -> None:
    """A sixth window answered by a label-free estimate (no labels yet), and a NaN and an inf in a
    drift row of the latest window (JSON has neither: they must come out null)."""
    wh = open_warehouse(story["env"]["MONITORING_WAREHOUSE"])
    entry = {"estimate": 0.71, "low": 0.64, "high": 0.78, "method": "pape", "reliable": False,
             "reason": "too few rows to calibrate"}
    record_window_performance(wh, realized=None, estimate={"accuracy": entry}, model_name=MODEL, model_version="v3",
                              window_start=datetime(2026, 1, 6), window_end=datetime(2026, 1, 7), n_rows=60,
                              n_labeled=0, asset_key="eval_metrics", partition_key=f"2026-01-06|{MODEL}", run_id=None)
    wh.write(lambda conn: conn.execute(
        """UPDATE ml_drift_history SET effect_size = CAST('NaN' AS DOUBLE PRECISION),
                  test_statistic = CAST('Infinity' AS DOUBLE PRECISION)
           WHERE drift_type = 'data' AND feature_name = 'brightness' AND current_period = '2026-01-05'"""))


def test_read_routes_answer_from_the_story(story, tmp_path):
    _estimate_a_window_and_break_a_number(story)
    with api_server(story["env"], log=tmp_path / "api.log") as url:
        status, body = call(url + "/monitoring/drift/status", token=None)  # reads are open on 127.0.0.1
        assert status == 200, body
        models = {m["model_id"]: m for m in body["models"]}
        assert {"digits_classifier", "breast_cancer_classifier"} <= set(models)  # the monitors file's too
        digits = models[MODEL]
        assert digits["monitored"] and digits["window"] == "2026-01-05" and digits["model_version"] == "v3"
        data = _query(story, """SELECT count(*), count(*) FILTER (WHERE drift_detected) FROM ml_drift_history
                                WHERE model_name = ? AND drift_type = 'data' AND current_period = '2026-01-05'""",
                      [MODEL])[0]
        assert len(digits["data_drift"]) == data[0] and digits["overall_drift_score"] == pytest.approx(data[1] / data[0])
        assert {r["drift_type"] for r in digits["prediction_drift"]} == {"prediction"}
        assert {r["window"] for r in digits["concept_drift"]} == {"2026-01-05"}
        brightness = next(r for r in digits["data_drift"] if r["feature"] == "brightness")
        assert brightness["effect_size"] is None and brightness["statistic"] is None
        open_ids = {r[0] for r in _query(story, "SELECT alert_id FROM ml_monitoring_alerts WHERE status = 'open' "
                                                "AND model_name = ?", [MODEL])}
        assert open_ids and {a["alert_id"] for a in digits["alerts"]} == open_ids
        assert digits["last_checked"] is not None and body["as_of"]
        assert models["breast_cancer_classifier"]["window"] is None  # declared, never judged in the story

        # one model; an unknown one names the known
        status, one = call(f"{url}/monitoring/drift/{MODEL}")
        assert status == 200 and one["data_drift"] == digits["data_drift"] and one["alerts"] == digits["alerts"]
        status, missing = call(f"{url}/monitoring/drift/no_such_model")
        assert status == 404 and "no_such_model" in missing["detail"] and MODEL in missing["detail"]

        # history: filters and pages
        total = _query(story, "SELECT count(*) FROM ml_drift_history WHERE model_name = ?", [MODEL])[0][0]
        seen, offset = [], 0
        while offset is not None:
            status, page = call(f"{url}/monitoring/drift/history?model={MODEL}&limit=70&offset={offset}")
            assert status == 200 and page["total"] == total and len(page["rows"]) <= 70
            seen += page["rows"]
            offset = page["next_offset"]
        assert len(seen) == total and len({(r["window"], r["drift_type"], r["feature"], r["method"]) for r in seen}) \
            == total
        assert [r["window"] for r in seen] == sorted((r["window"] for r in seen), reverse=True)
        status, page = call(f"{url}/monitoring/drift/history?drift_type=prediction&feature=confidence"
                            "&start=2026-01-02&end=2026-01-04")
        assert status == 200 and page["total"] == 3 and page["next_offset"] is None
        assert {(r["drift_type"], r["feature"]) for r in page["rows"]} == {("prediction", "confidence")}
        assert sorted(r["window"] for r in page["rows"]) == ["2026-01-02", "2026-01-03", "2026-01-04"]
        status, page = call(f"{url}/monitoring/drift/history?drifted=true&drift_type=data")
        assert status == 200 and page["total"] > 0 and all(r["drift_detected"] for r in page["rows"])
        assert {r["window"] for r in page["rows"]} <= {"2026-01-03", "2026-01-04"}
        status, bad = call(f"{url}/monitoring/drift/history?drift_type=covariate")
        assert status == 422 and bad["detail"][0]["loc"] == ["query", "drift_type"]
        status, bad = call(f"{url}/monitoring/drift/history?start=2026-01-04&end=2026-01-02")
        assert status == 422 and bad["detail"][0]["loc"] == ["query", "start"] and "after end" in bad["detail"][0]["msg"]
        status, bad = call(f"{url}/monitoring/drift/history?limit=0")
        assert status == 422 and bad["detail"][0]["loc"] == ["query", "limit"]

        # performance: realized and estimated apart
        status, perf = call(f"{url}/monitoring/performance/{MODEL}")
        assert status == 200
        realized_days = {r["window_start"][:10] for r in perf["realized"] if r["metric"] == "accuracy"}
        assert realized_days == {f"2026-01-0{d}" for d in range(1, 6)}
        assert [(e["window_start"][:10], e["metric"], e["estimate"], e["ci_low"], e["ci_high"], e["reliable"],
                 e["reliability_reason"]) for e in perf["estimated"]] == [
            ("2026-01-06", "accuracy", 0.71, 0.64, 0.78, False, "too few rows to calibrate")]
        known = [e for e in perf["estimate_history"] if e["realized"] is not None]
        assert known and all(e["error"] == pytest.approx(e["estimate"] - e["realized"]) for e in known)
        assert {r["model_version"] for r in perf["reference"]} >= {"v1", "v3"}
        status, perf = call(f"{url}/monitoring/performance/{MODEL}?metric=accuracy&start=2026-01-03&end=2026-01-04")
        assert status == 200 and sorted(r["window_start"][:10] for r in perf["realized"]) == ["2026-01-03", "2026-01-04"]
        assert perf["estimated"] == [] and {r["metric"] for r in perf["reference"]} == {"accuracy"}
        status, missing = call(f"{url}/monitoring/performance/nope")
        assert status == 404 and MODEL in missing["detail"]

        # alerts, filtered, each with its diagnosis; both paths give the same answer
        status, alerts = call(f"{url}/monitoring/alerts")
        assert status == 200 and {a["alert_id"] for a in alerts["alerts"]} == open_ids == set(
            r[0] for r in _query(story, "SELECT alert_id FROM ml_monitoring_alerts WHERE status = 'open'"))
        assert alerts["total"] == len(open_ids)
        assert all(a["diagnosis"]["category"] in ("data", "model", "infrastructure", "none") and a["diagnosis"]["evidence"]
                   for a in alerts["alerts"])
        assert call(f"{url}/api/ml/alerts") == (200, alerts)
        status, warning = call(f"{url}/monitoring/alerts?severity=warning")
        assert status == 200 and warning["total"] > 0 and {a["severity"] for a in warning["alerts"]} == {"warning"}
        status, slow = call(f"{url}/api/ml/alerts?type=PERFORMANCE_DEGRADED&model={MODEL}")
        assert status == 200 and slow["total"] > 0 and {a["alert_type"] for a in slow["alerts"]} == {"PERFORMANCE_DEGRADED"}
        status, none = call(f"{url}/monitoring/alerts?model=breast_cancer_classifier")
        assert status == 200 and none["total"] == 0
        status, bad = call(f"{url}/monitoring/alerts?severity=urgent")
        assert status == 422 and bad["detail"][0]["loc"] == ["query", "severity"]


def test_acknowledge_then_the_cli_agrees(story, tmp_path):
    with api_server(story["env"], log=tmp_path / "api.log") as url:
        status, before = call(f"{url}/monitoring/alerts")
        target = next(a["alert_id"] for a in before["alerts"] if a["alert_type"] == "DRIFT_DETECTED")
        assert target in _cli(story, "list")
        ack = f"{url}/monitoring/alerts/{target}/acknowledge"
        assert call(ack, "POST", {"by": "ann"}, token=None)[0] == 401
        assert call(ack, "POST", {"by": "ann"}, token="wrong")[0] == 401
        status, body = call(ack, "POST", {"by": "  "})
        assert status == 422 and body["detail"][0]["loc"] == ["body", "by"]

        status, body = call(ack, "POST", {"by": "ann", "note": "feed switched cameras; retraining"})
        assert status == 200 and body["changed"] is True
        assert (body["alert"]["status"], body["alert"]["acknowledged_by"], body["alert"]["acknowledged_note"]) == (
            "acknowledged", "ann", "feed switched cameras; retraining")
        status, after = call(f"{url}/monitoring/alerts")  # the API's own write is seen at once
        assert target not in {a["alert_id"] for a in after["alerts"]} and after["total"] == before["total"] - 1
        assert target not in _cli(story, "list")
        assert f"{target}  acknowledged" in _cli(story, "list", "--all") and "acknowledged by ann" in _cli(
            story, "list", "--all")

        status, again = call(ack, "POST", {"by": "bob", "note": "me too"})
        assert status == 200 and again["changed"] is False
        assert (again["alert"]["acknowledged_by"], again["alert"]["acknowledged_note"]) == (
            "ann", "feed switched cameras; retraining")
        assert _query(story, "SELECT acknowledged_by, acknowledged_note FROM ml_monitoring_alerts WHERE alert_id = ?",
                      [target]) == [("ann", "feed switched cameras; retraining")]

        status, body = call(f"{url}/monitoring/alerts/0000000000/acknowledge", "POST", {"by": "ann"})
        assert status == 404 and "0000000000" in body["detail"]

        other = next(a["alert_id"] for a in after["alerts"])
        _cli(story, "resolve", other, "--reason", "fixed upstream")
        status, body = call(f"{url}/monitoring/alerts/{other}/acknowledge", "POST", {"by": "ann"})
        assert status == 409 and "resolved" in body["detail"] and "fixed upstream" in body["detail"]


HOLDER = r"""
import sys, time
from monitoring_pipeline.storage import open_warehouse
path, hold = sys.argv[1], float(sys.argv[2])
wh = open_warehouse(path, timeout=120)
wh.write(lambda c: c.execute(                     # a change the API's snapshot has not seen
    "INSERT INTO ml_monitoring_alerts (alert_id, severity, alert_type, model_name, message) "
    "VALUES ('live-before', 'info', 'DATA_QUALITY_ISSUE', 'digits_classifier', 'written before the hold')"))
with wh.connect() as conn:                        # a run holding the warehouse for writing
    conn.execute("BEGIN TRANSACTION")
    conn.execute("UPDATE ml_monitoring_alerts SET message = message || ' ' WHERE severity = 'info'")
    print("held", flush=True)
    time.sleep(hold)
    conn.execute("COMMIT")
print("released", flush=True)
for i in range(20):                               # then short writes in a loop, as a run's steps do
    wh.write(lambda c: c.execute(
        "INSERT INTO ml_monitoring_alerts (alert_id, severity, alert_type, model_name, message) "
        "VALUES (?, 'info', 'DATA_QUALITY_ISSUE', 'digits_classifier', 'written while the API reads')",
        [f"live-{i}"]))
    time.sleep(0.1)
print("wrote", flush=True)
"""


def test_reads_keep_answering_while_a_run_writes(story, tmp_path):
    path = story["env"]["MONITORING_WAREHOUSE"]
    with api_server(story["env"], log=tmp_path / "api.log") as url:
        assert all(call(url + route)[0] == 200 for route in READS)  # a snapshot exists
        target = call(f"{url}/monitoring/alerts")[1]["alerts"][0]["alert_id"]
        # held past the API's write_timeout (10 s): a read of the warehouse itself would fail
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, path, "12"], stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        said = []
        listener = threading.Thread(target=lambda: said.extend(line.strip() for line in holder.stdout))
        listener.start()
        acked, ack = {}, None
        answers = []
        while holder.poll() is None:
            for route in READS:
                answers.append((route, *call(url + route)))
            if "released" in said and ack is None:  # an acknowledgement while the run writes in short steps
                ack = threading.Thread(target=lambda: acked.update(answer=call(
                    f"{url}/monitoring/alerts/{target}/acknowledge", "POST", {"by": "ann"})))
                ack.start()
        listener.join()
        assert holder.wait() == 0 and said == ["released", "wrote"]
        if ack is None:  # the loop ended before it saw "released"
            acked["answer"] = call(f"{url}/monitoring/alerts/{target}/acknowledge", "POST", {"by": "ann"})
        else:
            ack.join()
        assert acked["answer"][0] == 200 and acked["answer"][1]["changed"] is True, acked
        bad = [(route, status, body) for route, status, body in answers if status != 200]
        assert not bad, bad[:3]
        assert len(answers) > 3 * len(READS)

        # the rows written meanwhile show once the snapshot is refreshed (snapshot_max_age 10 s)
        for _ in range(200):
            status, alerts = call(f"{url}/monitoring/alerts?type=DATA_QUALITY_ISSUE")
            if status == 200 and {"live-before", *(f"live-{i}" for i in range(20))} <= {
                    a["alert_id"] for a in alerts["alerts"]}:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the rows written while the API read never showed: {alerts}")
