"""The HTML report of one monitoring window: one self-contained file per model and window.

``write_report`` reads what the window stored in the warehouse (the summary, the drift
rows, the reference and current profiles, accuracy over time, the alerts and their
diagnoses) and writes ``<root>/<model>/<partition>.html``. The file needs no server
and no network: the style is inline and every plot is a PNG data URI. A part that
the window did not produce (no labels yet, no alerts, an empty window, a run that
failed before its summary) says so in a "not available" note instead of failing the report.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from pathlib import Path

import pandas as pd

from monitoring_pipeline.core import DatasetProfile
from monitoring_pipeline.core.drift import ranked_drifted
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.references import load_reference_set

from .paths import child
from .report_plots import ReportPlots, feature_plots, output_plots, performance_plot
from .settings import reports_dir

URI_PREFIX = "data:image/png;base64,"
HISTORY_DAYS = 90
_SEVERITY_ORDER = "CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END"


@dataclass(frozen=True)
class ReportData:
    """What the report shows, as read from the warehouse; every part may be missing."""

    model: str
    day: date
    partition_key: str
    model_version: str | None = None
    summary: dict | None = None  # the monitoring_summary artifact's payload
    drift: tuple[dict, ...] = ()  # rows: drift_type, name, method, effect_size, threshold, p_value, severity, drifted
    inputs: tuple[DatasetProfile, DatasetProfile] | None = None  # (reference, current)
    outputs: tuple[DatasetProfile, DatasetProfile] | None = None
    accuracy: tuple[tuple[date, bool, float], ...] = ()  # (window day, estimated, accuracy)
    reference_accuracy: float | None = None
    alerts: tuple[dict, ...] = ()  # rows of ml_monitoring_alerts, details decoded
    # (window day, low, high, reliable) of each estimated accuracy with an interval
    estimate_bounds: tuple[tuple[date, float, float, bool], ...] = ()


@dataclass(frozen=True)
class Report:
    """The written report, and its key plot for Dagster metadata: the most drifted
    feature's plot, else the performance plot, as base64 PNG bytes (None if neither)."""

    path: Path
    key_plot_png_b64: str | None

    @property
    def key_plot_uri(self) -> str | None:
        """The key plot as a data URI, for ``lib.plots.markdown_image``."""
        return None if self.key_plot_png_b64 is None else URI_PREFIX + self.key_plot_png_b64


def _summary(wh: Warehouse, model: str, partition_key: str) -> dict | None:
    found = wh.read("""SELECT payload FROM artifacts WHERE kind = 'report' AND name = 'monitoring_summary'
                       AND model_name = ? AND partition_key = ? ORDER BY created_at DESC, artifact_id DESC LIMIT 1""",
                    [model, partition_key])["payload"]
    return json.loads(found.iloc[0]) if len(found) else None


def _accuracy(wh: Warehouse, model: str, day: date) -> tuple[tuple, tuple]:
    """The accuracy per window up to ``day``: (window day, estimated, accuracy) rows, and
    (window day, low, high, reliable) for the estimates that have an interval."""
    rows = wh.read("""SELECT CAST(window_start AS DATE) AS day, estimated, avg(metric_value) AS value,
                             min(ci_low) AS low, max(ci_high) AS high, bool_and(coalesce(reliable, false)) AS reliable
                      FROM ml_performance_metrics WHERE model_name = ? AND metric_name = 'accuracy'
                        AND data_split = 'production' AND CAST(window_start AS DATE) BETWEEN ? AND ?
                      GROUP BY CAST(window_start AS DATE), estimated ORDER BY day, estimated""",
                   [model, day - timedelta(days=HISTORY_DAYS), day])
    records = rows.to_dict("records")  # DATEs arrive as Timestamps from DuckDB, as dates from PostgreSQL
    points = tuple((pd.Timestamp(r["day"]).date(), bool(r["estimated"]), float(r["value"])) for r in records)
    bounds = tuple((pd.Timestamp(r["day"]).date(), float(r["low"]), float(r["high"]), bool(r["reliable"]))
                   for r in records
                   if r["estimated"] and pd.notna(r["low"]) and pd.notna(r["high"]))
    return points, bounds


def _reference_accuracy(wh: Warehouse, model: str, version: str | None) -> float | None:
    found = wh.read("""SELECT metric_value FROM ml_performance_metrics WHERE model_name = ? AND metric_name = 'accuracy'
                       AND data_split = 'reference' AND model_version IS NOT DISTINCT FROM ?
                       ORDER BY measured_at DESC LIMIT 1""", [model, version])["metric_value"]
    return float(found.iloc[0]) if len(found) else None


def _alert_rows(wh: Warehouse, model: str, partition_key: str) -> tuple[dict, ...]:
    alerts = wh.read(f"""SELECT severity, alert_type, message, recommended_action, details, acknowledged_by,
                                status, CAST(resolved_at AS VARCHAR) AS resolved_at, resolution
                         FROM ml_monitoring_alerts WHERE model_name = ? AND partition_key = ?
                         ORDER BY status = 'resolved', {_SEVERITY_ORDER}, alert_type""",
                     [model, partition_key]).to_dict("records")
    return tuple({**a, "details": json.loads(a["details"]) if a["details"] else {}} for a in alerts)


def _status(alert: dict) -> str:
    return alert.get("status") or "open"


def read_report_data(wh: Warehouse, model: str, day: date, partition_key: str) -> ReportData:
    """Everything the warehouse holds about one window of one model."""
    summary = _summary(wh, model, partition_key)
    drift = wh.read("""SELECT drift_type, feature_name AS name, method, effect_size, threshold, p_value, severity,
                              drift_detected AS drifted, model_version FROM ml_drift_history
                       WHERE model_name = ? AND current_period = ? AND drift_type IN ('data', 'prediction')
                       ORDER BY drift_type, feature_name""", [model, day.isoformat()]).to_dict("records")
    current = {r["name"]: r for r in wh.read(
        """SELECT name, model_version, payload FROM artifacts WHERE kind = 'profile' AND model_name = ?
           AND partition_key = ? AND name IN ('current_inputs', 'current_outputs')
           ORDER BY created_at, artifact_id""", [model, partition_key]).to_dict("records")}
    versions = [(summary or {}).get("model_version"), *(r["model_version"] for r in [*current.values(), *drift])]
    version = next((v for v in versions if isinstance(v, str)), None)

    reference = load_reference_set(wh, model, version)  # only a reference stored whole

    def pair(part: str) -> tuple[DatasetProfile, DatasetProfile] | None:
        ref, cur = getattr(reference, part, None), current.get(f"current_{part}")
        return None if ref is None or cur is None else (ref, DatasetProfile.from_dict(json.loads(cur["payload"])))

    points, bounds = _accuracy(wh, model, day)
    return ReportData(model, day, partition_key, version, summary, tuple(drift), pair("inputs"), pair("outputs"),
                      points, _reference_accuracy(wh, model, version), _alert_rows(wh, model, partition_key),
                      bounds)


def draw_plots(data: ReportData) -> ReportPlots:
    drifted = ranked_drifted([r for r in data.drift if r["drift_type"] == "data"])
    return ReportPlots(feature_plots(drifted, *data.inputs) if data.inputs and drifted else [],
                       output_plots(*data.outputs) if data.outputs else [],
                       performance_plot(list(data.accuracy), data.day, data.reference_accuracy,
                                        list(data.estimate_bounds)))


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def _note(why: str) -> str:
    return f'<p class="note">not available: {escape(why)}</p>'


def _images(plots: list[tuple[str, str]], what: str) -> str:
    return "".join(f'<figure><img src="{uri}" alt="{escape(name)} {what}"><figcaption>{escape(name)}'
                   f"</figcaption></figure>" for name, uri in plots)


def _drift_table(rows: list[dict]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("feature", "method", "effect size", "threshold", "p-value (adjusted)",
                                             "severity"))
    ranked = ranked_drifted(rows) + [r for r in rows if not r["drifted"]]
    body = "".join(
        f'<tr class="{"drifted" if r["drifted"] else "stable"}"><td>{escape(str(r["name"]))}</td>'
        f'<td>{escape(str(r["method"]))}</td><td>{_fmt(r["effect_size"], ".3f")}</td>'
        f'<td>{_fmt(r["threshold"], ".3f")}</td><td>{_fmt(r["p_value"], ".2g")}</td>'
        f'<td>{escape(str(r["severity"]))}</td></tr>' for r in ranked)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _header(data: ReportData) -> str:
    summary = data.summary
    status = summary["status"] if summary else (
        "fail" if any(a["severity"] == "critical" and _status(a) != "resolved" for a in data.alerts) else "unknown")
    parts = [f"<h1>{escape(data.model)}</h1>",
             f'<p class="meta">window {escape(data.partition_key)} &middot; model version '
             f'{escape(data.model_version or "unknown")} &middot; <span class="badge status-{escape(status)}">'
             f"{escape(status.upper())}</span></p>"]
    if summary:
        parts.append(f'<p class="summary">{escape(summary["summary"])}</p>')
        parts.append("<ul>" + "".join(f"<li>{escape(r)}</li>" for r in summary.get("reasons", [])) + "</ul>")
    else:
        parts.append(_note("no monitoring summary is stored for this window (a blocking check stopped it, "
                           "or it has not run)"))
    return "\n".join(parts)


def _drift(data: ReportData, plots: ReportPlots) -> str:
    parts = ["<h2>Drift</h2>"]
    for drift_type, title in (("data", "Inputs"), ("prediction", "Outputs")):
        rows = [r for r in data.drift if r["drift_type"] == drift_type]
        parts.append(f"<h3>{title}</h3>")
        parts.append(_drift_table(rows) if rows else _note(f"no {drift_type} drift results for this window"))
    parts.append("<h2>Drifted features: reference vs current</h2>")
    inputs = [r for r in data.drift if r["drift_type"] == "data"]
    if plots.features:
        parts.append(_images(plots.features, "reference vs current"))
    elif not inputs:
        parts.append(_note("no data drift results for this window"))
    elif not any(r["drifted"] for r in inputs):
        parts.append('<p class="note">No input feature drifted in this window.</p>')
    else:
        parts.append(_note("the reference or current input profile is not stored"))
    parts.append("<h2>Output distribution</h2>")
    parts.append(_images(plots.outputs, "reference vs current") if plots.outputs
                 else _note("no reference or current output profile is stored for this window"))
    return "\n".join(parts)


def _performance(plots: ReportPlots) -> str:
    body = (f'<figure><img src="{plots.performance}" alt="accuracy per window"></figure>' if plots.performance
            else _note("no accuracy was measured or estimated for this model up to this window"))
    return "<h2>Performance over time</h2>\n" + body


def _alert(alert: dict) -> str:
    found = alert["details"].get("diagnosis")
    status = _status(alert)
    parts = [f'<li class="alert severity-{escape(alert["severity"])} alert-{escape(status)}"><p><span class="badge">'
             f'{escape(alert["severity"])}</span> <span class="badge alert-status">{escape(status)}</span> '
             f'<b>{escape(alert["alert_type"])}</b> {escape(alert["message"])}</p>',
             f'<p>Recommended action: {escape(alert["recommended_action"] or "none")}</p>']
    if alert.get("acknowledged_by"):
        parts.append(f'<p class="note">acknowledged by {escape(str(alert["acknowledged_by"]))}</p>')
    if status == "resolved":
        when = str(alert.get("resolved_at") or "an unknown time").split(".")[0]
        parts.append(f'<p class="resolution">resolved at {escape(when)}: '
                     f'{escape(str(alert.get("resolution") or "no reason recorded"))}</p>')
    if found:
        evidence = "".join(f"<li>{escape(str(e))}</li>" for e in found.get("evidence", []))
        parts.append(f'<div class="diagnosis"><p>Diagnosis ({escape(found["category"])}): '
                     f'{escape(found["hypothesis"])}</p>' + (f"<ul>{evidence}</ul>" if evidence else "")
                     + f'<p>Action: {escape(found["recommended_action"])}</p></div>')
    else:
        parts.append(_note("no diagnosis was recorded with this alert"))
    return "".join(parts) + "</li>"


def _alerts(data: ReportData) -> str:
    body = ("<ul class=\"alerts\">" + "".join(_alert(a) for a in data.alerts) + "</ul>" if data.alerts
            else '<p class="note">No alerts were raised for this window.</p>')
    return "<h2>Alerts and diagnosis</h2>\n" + body


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
tr.drifted{background:#fde2e1;font-weight:bold}.note{color:#666;font-style:italic}
.badge{padding:.1em .5em;border-radius:.3em;background:#ddd}.status-ok{background:#2e7d32;color:#fff}
.status-warn{background:#f9a825}.status-fail{background:#c62828;color:#fff}.summary{font-size:1.15em}
.severity-critical{border-left:4px solid #c62828}.severity-warning{border-left:4px solid #f9a825}
.alert{list-style:none;padding-left:.8em;margin-bottom:1em}.alert-resolved{opacity:.6}
.resolution{font-weight:bold}img{max-width:100%}figure{margin:.5em 0}"""
# Writes into the page whether every image decoded, so a headless browser's dumped DOM shows it.
SCRIPT = """window.addEventListener("load", function () {
  var all = Array.prototype.slice.call(document.images);
  var ok = all.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.getElementById("images-status").textContent = "images loaded: " + ok + " of " + all.length;
});"""


def render_report(data: ReportData, plots: ReportPlots | None = None) -> str:
    """The report's HTML; ``plots`` are drawn from ``data`` when not given."""
    plots = plots if plots is not None else draw_plots(data)
    title = escape(f"{data.model} {data.day.isoformat()}: monitoring report")
    body = "\n".join([_header(data), _drift(data, plots), _performance(plots), _alerts(data)])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n"
            f'<p id="images-status" class="note">images loaded: not checked</p>\n<script>{SCRIPT}</script>\n'
            "</body></html>\n")


def report_path(root: Path, model: str, partition_key: str) -> Path:
    """``<root>/<model>/<partition>.html``; ValueError when that is not inside ``root``."""
    return child(root, model, partition_key.replace("|", "_").replace("/", "_") + ".html")


def write_report(wh: Warehouse, monitor_name: str, day: date, partition_key: str,
                 root: Path | None = None) -> Report:
    """Write the window's report to ``<root>/<model>/<partition>.html`` (default root:
    ``reports_dir()``), replacing an earlier one atomically."""
    data = read_report_data(wh, monitor_name, day, partition_key)
    plots = draw_plots(data)
    path = report_path(Path(root) if root is not None else reports_dir(), monitor_name, partition_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(render_report(data, plots))
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a report is for reading
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    key = plots.features[0][1] if plots.features else plots.performance
    return Report(path, key[len(URI_PREFIX):] if key else None)
