"""The HTML report of a window, written from what real monitoring runs stored."""

import re
from datetime import date
from html import escape
from pathlib import Path

import pandas as pd
import pytest

from monitoring_pipeline.defs.resources import WarehouseResource
from monitoring_pipeline.lib.report import ReportData, read_report_data, render_report, write_report
from monitoring_pipeline.lib.report_plots import performance_plot
from monitoring_pipeline.storage import Warehouse, open_warehouse
from monitoring_pipeline_tests.defs.conftest import MODEL, config_of, file_monitor, run_window, traffic_file

HEALTHY, UNLABELED, DRIFTED, STOPPED = (date(2026, 1, d) for d in (3, 4, 5, 6))
MODERATE = {"mean radius": 1.06, "mean perimeter": 1.06}  # drift at "warn": the window runs to the end
SEVERE = {"mean radius": 1.4, "mean perimeter": 1.4, "mean area": 1.8}  # the drift gate stops the window
HEADINGS = ["Drift", "Drifted features: reference vs current", "Output distribution", "Performance over time",
            "Alerts and diagnosis"]


def key(day: date) -> str:
    return f"{day}|{MODEL}"


def monitored_warehouse(folder: Path, target: str) -> Warehouse:
    """Four windows of the real monitoring job over bundled data: healthy, without labels (accuracy
    estimated), moderately drifted (status warn), and severely drifted (failed by the drift gate)."""
    days = [(HEALTHY, {}, True, 1), (UNLABELED, {}, False, 2), (DRIFTED, MODERATE, True, 0), (STOPPED, SEVERE, True, 3)]
    frames = []
    for day, shift, labels, seed in days:
        frame = pd.read_csv(traffic_file(folder / f"{day}.csv", day=day, shift=shift, labels=labels, seed=seed))
        frames.append(frame.assign(request_id=f"{day}-" + frame["request_id"]))
    path = folder / "traffic.csv"
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    config, warehouse = config_of(file_monitor(path)), WarehouseResource(path=target)
    outcomes = [run_window(config, warehouse, day=day).success for day, *_ in days]
    assert outcomes == [True, True, True, False]
    return warehouse.get()


@pytest.fixture(scope="module")
def wh(tmp_path_factory, module_targets) -> Warehouse:
    return monitored_warehouse(tmp_path_factory.mktemp("monitored"), module_targets("monitored"))


def assert_self_contained(page: str) -> None:
    assert "http://" not in page and "https://" not in page and 'src="/' not in page and "url(" not in page
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)"', page))


def test_a_drifted_window_reports_its_summary_drift_plots_and_diagnosis(wh, tmp_path):
    report = write_report(wh, MODEL, DRIFTED, key(DRIFTED), root=tmp_path)
    assert report.path == tmp_path / MODEL / f"{DRIFTED}_{MODEL}.html"
    page = report.path.read_text()
    summary = wh.read("SELECT payload->>'summary' AS s FROM artifacts WHERE name = 'monitoring_summary' "
                      "AND partition_key = ?", [key(DRIFTED)])["s"][0]
    assert "moderate drift on 2 features" in summary and escape(summary) in page
    assert 'class="badge status-warn"' in page
    drifted = re.findall(r'<tr class="drifted"><td>([^<]*)</td>', page)
    assert drifted == ["mean radius", "mean perimeter"]  # the most drifted first
    assert page.count('<tr class="stable">') == 28 + 2  # the other inputs, and both outputs
    assert page.count('<img src="data:image/png;base64,') == 2 + 2 + 1  # drifted features, outputs, accuracy
    assert 'alt="mean radius reference vs current"' in page
    diagnosis = wh.read("SELECT details->'diagnosis'->>'hypothesis' AS h FROM ml_monitoring_alerts "
                        "WHERE partition_key = ?", [key(DRIFTED)])["h"][0]
    assert diagnosis.startswith("The input data shifted") and escape(diagnosis) in page
    assert "Feature mean radius mean shifted from" in page
    assert all(heading in page for heading in HEADINGS) and "not available" not in page
    assert_self_contained(page)
    assert report.key_plot_png_b64 and report.key_plot_uri in page  # the mean radius plot
    assert page.index(report.key_plot_uri) == page.index('<img src="data:image/png;base64,') + len('<img src="')


def test_performance_over_time_holds_measured_and_estimated_windows(wh):
    data = read_report_data(wh, MODEL, DRIFTED, key(DRIFTED))
    assert [(d, estimated) for d, estimated, _ in data.accuracy] == [
        (HEALTHY, False), (UNLABELED, True), (DRIFTED, False)]  # never a window after the report's
    assert all(0.8 < value <= 1.0 for _, _, value in data.accuracy)
    # the unlabeled window's estimate is drawn with its interval, around its value
    [(day, low, high, reliable)] = data.estimate_bounds
    estimate = next(v for d, e, v in data.accuracy if e)
    assert day == UNLABELED and low <= estimate <= high and high - low > 0 and isinstance(reliable, bool)
    assert data.reference_accuracy == pytest.approx(0.982, abs=0.01) and data.model_version == "logistic_regression"


def test_the_accuracy_plot_draws_intervals_and_marks_an_unreliable_estimate():
    days = [date(2026, 1, d) for d in (1, 2, 3)]
    points = [(days[0], False, 0.95), (days[1], True, 0.91), (days[2], True, 0.90)]
    plain = performance_plot(points, days[2], 0.96)
    drawn = performance_plot(points, days[2], 0.96, [(days[1], 0.85, 0.95, True), (days[2], 0.01, 1.0, False)])
    assert plain.startswith("data:image/png;base64,") and drawn.startswith("data:image/png;base64,")
    assert drawn != plain  # the intervals and the hollow marker are drawn


def test_a_window_failed_by_the_drift_gate_reports_its_whole_record(wh, tmp_path):
    page = write_report(wh, MODEL, STOPPED, key(STOPPED), root=tmp_path).path.read_text()
    assert "no monitoring summary is stored" not in page  # the gate no longer erases the day
    assert 'class="badge status-warn"' in page and "drift alert on" in page  # T082: a drift alert warns
    assert {"mean radius", "mean perimeter", "mean area"} <= set(
        re.findall(r'<tr class="drifted"><td>([^<]*)</td>', page))
    assert re.search(r'critical</span> <span class="badge alert-status">open</span> <b>DRIFT_DETECTED</b>', page)
    assert "Diagnosis (data): The input data shifted" in page
    assert_self_contained(page)


def test_a_window_with_nothing_stored_renders_notes(tmp_path, warehouse_target):
    report = write_report(open_warehouse(warehouse_target), MODEL, DRIFTED, key(DRIFTED), root=tmp_path)
    page = report.path.read_text()
    assert page.count("not available:") == 6  # summary, both drift tables, features, outputs, accuracy
    assert "No alerts were raised for this window." in page and "status-unknown" in page
    assert "<img" not in page and report.key_plot_png_b64 is None
    assert_self_contained(page)


def test_rewriting_a_report_replaces_it_and_leaves_no_temporary_file(wh, tmp_path):
    first = write_report(wh, MODEL, HEALTHY, key(HEALTHY), root=tmp_path)
    second = write_report(wh, MODEL, HEALTHY, key(HEALTHY), root=tmp_path)
    assert first.path == second.path and list(first.path.parent.iterdir()) == [first.path]
    assert "No input feature drifted in this window." in second.path.read_text()
    assert second.key_plot_png_b64 is not None  # the performance plot, when nothing drifted


def test_the_default_folder_comes_from_the_environment(monkeypatch, tmp_path, warehouse_target):
    monkeypatch.setenv("MONITORING_REPORTS", str(tmp_path / "reports"))
    report = write_report(open_warehouse(warehouse_target), MODEL, DRIFTED, key(DRIFTED))
    assert report.path == tmp_path / "reports" / MODEL / f"{DRIFTED}_{MODEL}.html"


def test_every_text_is_escaped():
    data = ReportData(model="<model>", day=DRIFTED, partition_key="p", summary={
        "status": "ok", "summary": "a <b>bold</b> & claim", "reasons": ["<script>alert(1)</script>"]},
        alerts=({"severity": "info", "alert_type": "SLO_BREACH", "message": "x<y", "recommended_action": None,
                 "details": {"diagnosis": {"category": "none", "hypothesis": "<i>h</i>", "evidence": ["e&f"],
                                           "recommended_action": "r"}}},))
    page = render_report(data)
    assert "a &lt;b&gt;bold&lt;/b&gt; &amp; claim" in page and "&lt;script&gt;alert(1)" in page
    assert "&lt;model&gt;" in page and "x&lt;y" in page and "&lt;i&gt;h&lt;/i&gt;" in page and "e&amp;f" in page
    assert "<b>bold" not in page and page.count("<script>") == 1  # only the image check


def test_resolved_alerts_stay_in_the_report_marked_with_when_and_why(tmp_path, warehouse_target):
    from monitoring_pipeline.core.alert_rules import Alert
    from monitoring_pipeline.storage.results import acknowledge_alert, upsert_alerts

    wh = open_warehouse(warehouse_target)
    gone, acked, still = (Alert(f"id-{n}", sev, "SLO_BREACH", MODEL, str(HEALTHY), f"{n} breach", "look", None, (n,))
                          for n, sev in (("gone", "critical"), ("acked", "warning"), ("still", "info")))
    upsert_alerts(wh, [gone, acked, still], asset_key="monitoring_alerts", partition_key=key(HEALTHY), run_id=1)
    assert acknowledge_alert(wh, acked.alert_id, "ana")
    upsert_alerts(wh, [acked, still], asset_key="monitoring_alerts", partition_key=key(HEALTHY), run_id=2)
    data = read_report_data(wh, MODEL, HEALTHY, key(HEALTHY))
    assert [(a["message"], a["status"]) for a in data.alerts] == [
        ("acked breach", "acknowledged"), ("still breach", "open"), ("gone breach", "resolved")]  # resolved last
    page = render_report(data)
    items = re.findall(r'<li class="alert [^"]*">.*?</li>', page, re.S)
    assert len(items) == 3
    resolved = next(i for i in items if "gone breach" in i)
    assert "alert-resolved" in resolved and ">resolved</span>" in resolved
    assert re.search(r"resolved at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: no longer raised by monitoring_alerts \(run 2\)",
                     resolved)
    acknowledged = next(i for i in items if "acked breach" in i)
    assert ">acknowledged</span>" in acknowledged and "acknowledged by ana" in acknowledged
    assert "resolved at" not in acknowledged
    assert 'class="badge status-unknown"' in page  # no summary, and the only critical alert is resolved
