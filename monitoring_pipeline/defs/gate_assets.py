"""The window's gate: blocking checks on the stored record, and what a bad window must not reach.

Every finding of a window (drift of inputs, outputs and concept, metrics, comparison,
summary, alerts with their diagnoses, the report) is computed and stored by the assets
before this one, whatever the window looks like. ``window_gate`` then reads the stored
alerts of the window and its blocking checks fail on a data-quality failure, an input
drift alert or a confirmed regression: the run fails (``dagster job execute`` exits
non-zero, so CI stops) and ``approved_window``, the window's release to downstream
consumers, is skipped.
"""

import dagster as dg

from monitoring_pipeline.core.gates import GateVerdict, gate_verdicts
from monitoring_pipeline.lib.monitors import MonitorsConfig
from monitoring_pipeline.lib.report import report_path
from monitoring_pipeline.lib.settings import reports_dir
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.results import drifted_inputs, summary_versions, window_alerts
from monitoring_pipeline.storage.runs import delete_artifact, save_artifact

from .metadata import drifted_effects_line, gate_line
from .partitions import window_of, window_partitions
from .resources import WAREHOUSE_POOL, WarehouseResource
from .window_assets import GROUP

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
APPROVAL = "window_approval"


def served_versions(wh: Warehouse, model: str, partition_key: str) -> dict:
    """The window's model version and the rows each version served, as metadata."""
    stored = summary_versions(wh, model, partition_key)
    if stored is None:
        return {}
    return {"model_version": stored[0], "served_by": dg.MetadataValue.json(stored[1])}


def gate_lines(wh: Warehouse, model: str, partition_key: str, verdicts: dict[str, GateVerdict]) -> dict[str, str]:
    """One line per gate that did not pass: what failed in the window, and where its report is."""
    report = report_path(reports_dir(), model, partition_key)
    where = str(report) if report.exists() else None
    lines = {}
    for name, v in verdicts.items():
        if v.passed:
            continue
        what = v.message.split(": ", 1)[-1]  # the worst alert's message
        if name == "no_drift_alert":
            what = drifted_effects_line(drifted_inputs(wh, partition_key)) or what
        lines[name] = gate_line(name, partition_key, what, where, failed=v.blocks)
    return lines


def build_gate_assets(config: MonitorsConfig) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    parts = window_partitions(config)

    @dg.asset(partitions_def=parts, group_name=GROUP, deps=["monitoring_summary", "monitoring_alerts"],
              kinds={"duckdb"}, pool=WAREHOUSE_POOL)
    def window_gate(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.Output[dict]:
        """The window's verdict per gate, read from the alerts stored for it (the checks on this
        asset are the blocking gates)."""
        window = window_of(context)
        wh = warehouse.get()
        alerts = window_alerts(wh, window.model, window.partition_key, asset_key="monitoring_alerts")
        verdicts = gate_verdicts(alerts)
        blocked = [v.name for v in verdicts.values() if v.blocks]
        lines = gate_lines(wh, window.model, window.partition_key, verdicts)
        gate = {"window": window.partition_key, "blocked_by": blocked,
                "gates": {name: v.to_dict() for name, v in verdicts.items()}, "lines": lines}
        save_artifact(wh, "report", "window_gate", payload=gate, model_name=window.model,
                      asset_key="window_gate", partition_key=window.partition_key)
        if blocked:  # an earlier approval of this window no longer holds
            delete_artifact(wh, APPROVAL, model_name=window.model, partition_key=window.partition_key)
        return dg.Output(gate, metadata={
            "blocked_by": ", ".join(blocked) or "nothing: the window may be released",
            **served_versions(wh, window.model, window.partition_key),
            **{name: lines.get(name, v.message) for name, v in verdicts.items()}})

    def gate_check(name: str, description: str):
        @dg.asset_check(name=name, asset=window_gate, blocking=True, partitions_def=parts,
                        description=description)
        def check(context: dg.AssetCheckExecutionContext, window_gate: dict) -> dg.AssetCheckResult:
            verdict = GateVerdict(**window_gate["gates"][name])
            line = window_gate.get("lines", {}).get(name, verdict.message)
            if not verdict.passed:  # the CLI prints this line just before Dagster's failure and traceback
                (context.log.error if verdict.blocks else context.log.warning)(line)
            return dg.AssetCheckResult(
                passed=verdict.passed, severity=ERROR if verdict.blocks else WARN,
                description=line, metadata={
                    "message": line, "features": ", ".join(verdict.features) or "none",
                    "alerts": ", ".join(verdict.alert_ids) or "none"})

        return check

    @dg.asset(partitions_def=parts, group_name=GROUP, deps=[window_gate], kinds={"duckdb"}, pool=WAREHOUSE_POOL)
    def approved_window(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """The window released to downstream consumers: materialized only when every blocking
        gate passed (a failed gate skips it, and removes an earlier approval)."""
        window = window_of(context)
        wh = warehouse.get()
        save_artifact(wh, "report", APPROVAL, payload={"window": window.partition_key, "run": context.run.run_id},
                      model_name=window.model, asset_key="approved_window", partition_key=window.partition_key)
        return dg.MaterializeResult(metadata={"window": window.partition_key,
                                              **served_versions(wh, window.model, window.partition_key)})

    checks = [
        gate_check("data_quality_passed", "ERROR when the window's data fails its quality checks (empty window, "
                   "missing columns, impossible values, too many missing values)."),
        gate_check("no_drift_alert", "ERROR when the window's input drift is at alert severity; WARN at warn."),
        gate_check("no_confirmed_regression", "ERROR when the candidate significantly regressed against the "
                   "champion on the same requests (a regression within noise is only in the summary)."),
    ]
    return [window_gate, approved_window], checks
