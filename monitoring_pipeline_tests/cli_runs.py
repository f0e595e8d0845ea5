"""Real ``dagster job execute`` runs of monitoring_job for the instance tests (concurrent runs,
a run killed mid-write, the instance on PostgreSQL), and what they leave behind: the runs and
their steps in the Dagster instance, the rows in the warehouse (either backend)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from monitoring_pipeline.storage import open_warehouse

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
MODEL = "breast_cancer_classifier"
EMBEDDED_INSTANCE = ROOT / "data" / "dagster_home" / "dagster.yaml"  # the pool limit 1 of a DuckDB warehouse


def run_env(home: Path, warehouse: str, **extra: str) -> dict:
    """The environment of a run on DAGSTER_HOME ``home`` and ``warehouse`` (a DuckDB path or a
    PostgreSQL URL); what a run writes beside the warehouse stays under ``home``."""
    return {**os.environ, "DAGSTER_HOME": str(home), "MONITORING_WAREHOUSE": str(warehouse),
            "MONITORING_MODELS": str(home / "models"), "MONITORING_METRICS": str(home / "metrics" / "m.prom"),
            "MONITORING_REPORTS": str(home / "reports"), "MONITORING_SPOOL": str(home / "spool"), **extra}


def new_home(home: Path, pool_limit: int | None = None) -> Path:
    """A DAGSTER_HOME with the embedded default's dagster.yaml (the warehouse pool limited to 1),
    initialised before any run starts on it; ``pool_limit`` sets the pool's limit as
    configs/deploy/README.md says a PostgreSQL warehouse does (`dagster instance concurrency set warehouse N`)."""
    from monitoring_pipeline_tests.dagster_home import init_dagster_home

    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(EMBEDDED_INSTANCE.read_text())
    init_dagster_home(home)
    if pool_limit is not None:
        out = subprocess.run([DAGSTER, "instance", "concurrency", "set", "warehouse", str(pool_limit)],
                             env=run_env(home, "unused"), capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and f"Set concurrency limit for warehouse to {pool_limit}" in out.stdout, out.stderr
    return home


def instance_yaml(dagster_db_url: str) -> str:
    """configs/deploy/dagster.yaml with its storage on the database at ``dagster_db_url`` (everything else,
    the queue, the pool limit, retries and run monitoring, as in production)."""
    import yaml

    config = yaml.safe_load((ROOT / "configs" / "deploy" / "dagster.yaml").read_text())
    # the driver configs/deploy/dagster.yaml names (scheme postgresql+psycopg2), in the URL
    url = dagster_db_url.replace("postgresql://", f"{config['storage']['postgres']['postgres_db']['scheme']}://", 1)
    config["storage"] = {"postgres": {"postgres_url": url}}
    return yaml.safe_dump(config, sort_keys=False)


def window(day: str) -> list[str]:
    return ["--tags", json.dumps({"dagster/partition": f"{day}|{MODEL}"})]


@dataclass
class Run:
    """A ``dagster job execute`` process; its output goes to a file (eight at once would fill pipes)."""

    process: subprocess.Popen
    log: Path

    def wait(self) -> tuple[int, str]:
        code = self.process.wait(timeout=3600)
        return code, self.log.read_text()


def start(home: Path, warehouse: str, day: str, *, job: str = "monitoring_job", definitions: list[str] | None = None,
          env: dict | None = None, name: str | None = None) -> Run:
    """monitoring_job (or ``job``) of ``day``'s window, started in a session of its own (so a
    test can kill its whole process group)."""
    log = home / "logs_cli" / f"{name or day}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [DAGSTER, "job", "execute", *(definitions or ["-m", "monitoring_pipeline"]), "-j", job, *window(day)]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=home, env=run_env(home, warehouse, **(env or {})), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Run(process, log)


def run(home: Path, warehouse: str, day: str, **options) -> tuple[int, str]:
    return start(home, warehouse, day, **options).wait()


def instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


def step_intervals(home: Path) -> list[tuple[float, float, str, str]]:
    """(start, end, run id, step key) of every step of every run on the instance at ``home``
    that ended (success or failure), from Dagster's event log."""
    types = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    out = []
    with instance(home) as inst:
        for record in inst.get_run_records():
            started = {}
            for entry in inst.all_logs(record.dagster_run.run_id, of_type=types):
                step = entry.dagster_event.step_key
                if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
                    started[step] = entry.timestamp
                elif step in started:
                    out.append((started.pop(step), entry.timestamp, record.dagster_run.run_id, step))
    return sorted(out)


def overlaps(intervals: list[tuple[float, float, str, str]]) -> list[tuple]:
    """Pairs of intervals of different runs that were open at the same time."""
    found = []
    for i, (start, end, run_id, step) in enumerate(intervals):
        for other in intervals[i + 1:]:
            if other[0] >= end:
                break
            if other[2] != run_id:
                found.append(((run_id[:8], step), (other[2][:8], other[3])))
    return found


def pooled_steps(job: str = "monitoring_job") -> set[str]:
    """The step keys of ``job``'s ops in the ``warehouse`` pool (an op inside a graph asset is
    ``<asset>.<op>``)."""
    from monitoring_pipeline.definitions import defs
    from monitoring_pipeline.defs.resources import WAREHOUSE_POOL

    graph = defs.resolve_job_def(job).graph
    return {str(handle) for handle in graph.iterate_node_handles()
            if getattr(graph.get_node(handle).definition, "pool", None) == WAREHOUSE_POOL}


def pooled(intervals, job: str = "monitoring_job"):
    """The intervals of steps in the ``warehouse`` pool (a fan-out's mapped step keys end in [...])."""
    keys = pooled_steps(job)
    return [i for i in intervals if i[3].split("[")[0] in keys]


def result_tables(warehouse: str) -> list[str]:
    """The warehouse's tables that key their rows by (asset_key, partition_key)."""
    wh = open_warehouse(warehouse)
    frame = wh.read("""SELECT c.table_name FROM information_schema.columns c
                       JOIN information_schema.tables t
                         ON t.table_name = c.table_name AND t.table_schema = c.table_schema
                       WHERE c.column_name = 'partition_key' AND t.table_type = 'BASE TABLE'
                         AND c.table_schema = current_schema()""")
    return sorted(frame["table_name"])


def partition_counts(warehouse: str) -> dict[tuple[str, str, str], int]:
    """Rows per (table, asset_key, partition_key) of every result table."""
    wh = open_warehouse(warehouse)
    counts = {}
    for table in result_tables(warehouse):
        frame = wh.read(f"SELECT asset_key, partition_key, count(*) AS n FROM {table} "
                        "GROUP BY asset_key, partition_key")
        counts.update({(table, str(r.asset_key), str(r.partition_key)): int(r.n) for r in frame.itertuples()})
    return counts


# What a window's results are, without what differs between two runs of it: ids, run ids, times,
# and the measured latencies (the bundled traffic times each prediction: wall-clock, never equal;
# on a loaded machine one can even breach the latency SLO in one run and not in the other).
MEASURED = {"ml_performance_metrics": "metric_name NOT LIKE 'latency%'",
            "ml_monitoring_alerts": "NOT (alert_type = 'SLO_BREACH' AND message LIKE '%atency%')"}
CONTENT = {
    "ml_drift_history": "partition_key, asset_key, drift_type, feature_name, method, test_statistic, p_value, "
                        "effect_size, threshold, severity, drift_detected, model_version",
    "ml_performance_metrics": "partition_key, asset_key, model_name, model_version, metric_name, metric_value, "
                              "data_split, estimated",
    "model_comparisons": "partition_key, baseline_version, candidate_version, metric_name, baseline_value, "
                         "candidate_value, status, verdict",
    "ml_monitoring_alerts": "partition_key, alert_id, alert_type, severity, drift_type, model_version, status",
    "artifacts": "partition_key, asset_key, kind, name, model_name, model_version",
    "reference_sets": "model_name, model_version",
    "model_registry": "model_name, model_version, stage",
    "model_registry_events": "model_name, model_version, stage",
    "retraining_requests": "model_name, trigger, decision",
    "performance_estimates": "partition_key, model_version, metric_name, method, estimate, ci_low, ci_high, "
                             "reliable, realized",
}


def _plain(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float):
        return round(value, 9)
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return value


def content(warehouse: str, tables=CONTENT) -> dict[str, list[tuple]]:
    """The rows of the result tables, as sorted tuples of the columns in CONTENT (floats to 9
    decimals), comparable between runs, orders of runs and backends."""
    wh = open_warehouse(warehouse)
    out = {}
    for table, columns in tables.items():
        where = f" WHERE {MEASURED[table]}" if table in MEASURED else ""
        frame = wh.read(f"SELECT {columns} FROM {table}{where}")
        rows = [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False, name=None)]
        out[table] = sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))
    return out
