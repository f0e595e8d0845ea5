"""`monitoring-pipeline`: the command line beside the Dagster UI.

    monitoring-pipeline alerts list [--model M] [--all]
    monitoring-pipeline alerts ack <alert_id> --by <name>
    monitoring-pipeline alerts resolve <alert_id> --reason "<why>"
    monitoring-pipeline migrate
    monitoring-pipeline models trust <model> <version>
    monitoring-pipeline windows add <day> [<day> ...]
    monitoring-pipeline serve [--host 127.0.0.1] [--port 8000] [--workers 1]
    monitoring-pipeline ingest

An alert is open, acknowledged or resolved, and never deleted: `list` shows the open
ones, `list --all` the whole history with each alert's status (and when and why it was
resolved). It works on the warehouse ($MONITORING_WAREHOUSE: a DuckDB file's path or a
postgresql:// URL; else data/warehouse.duckdb), which must exist: `list` opens it read-only,
`ack` and `resolve` for writing, `migrate` brings its schema up to this code's (any job does
too), `models trust` records the
weights hash of a version registered before hashes were recorded (checked against its
model card), so that it loads again. `windows add` registers days of the window partitions in
the Dagster instance of $DAGSTER_HOME (``dg launch --partition`` and the UI's launcher only
take a registered day). `serve` runs the HTTP API (monitoring_pipeline.api) under uvicorn;
off a loopback address it needs $MONITORING_API_TOKEN, since every read then needs it. `ingest` moves
the predictions and labels the API accepted (its spool, $MONITORING_SPOOL) into the warehouse, each
batch once (the API's own drainer and the traffic step do too). A warehouse that is missing,
corrupt, locked past ``--wait`` seconds or not writable is one line on stderr naming
the path and the cause, and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from monitoring_pipeline.lib.settings import warehouse_path
from monitoring_pipeline.lib.trust import trust_checkpoint
from monitoring_pipeline.storage import Warehouse, WarehouseError, open_warehouse
from monitoring_pipeline.storage.dialect import database_errors
from monitoring_pipeline.storage.schema import LATEST
from monitoring_pipeline.storage.results import acknowledge_alert, alert_history, open_alerts, resolve_alert


def _known(value) -> bool:
    return value is not None and not pd.isna(value)


def _when(value) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _list(wh: Warehouse, model: str | None, everything: bool) -> int:
    frame = alert_history(wh, model) if everything else open_alerts(wh, model)
    if frame.empty:
        print("no open alerts" if not everything else "no alerts")
        return 0
    for a in frame.itertuples():
        notes = []
        if _known(a.acknowledged_at):
            notes.append(f"acknowledged by {a.acknowledged_by} at {_when(a.acknowledged_at)}")
        if a.status == "resolved":
            notes.append(f"resolved at {_when(a.resolved_at)}: {a.resolution}")
        print(f"{a.alert_id}  {a.status:<12}  {a.severity:<8}  {a.alert_type:<18}  {a.model_name}  "
              f"{a.partition_key or ''}  {a.message[:100]}" + "".join(f"  [{n}]" for n in notes))
    return 0


def _add_windows(days: list[str]) -> int:
    """Register window days in the instance the runs use (not an ephemeral one: DAGSTER_HOME is required)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        print("monitoring-pipeline: set DAGSTER_HOME to the Dagster home of your runs "
              "(e.g. DAGSTER_HOME=$PWD/data/dagster_home)", file=sys.stderr)
        return 1
    import dagster as dg  # the other commands need only the warehouse

    from monitoring_pipeline.defs.partitions import DAYS, register_days

    try:
        with dg.DagsterInstance.get() as instance:
            new = register_days(instance, days)
    except ValueError as error:
        print(f"monitoring-pipeline: {error}", file=sys.stderr)
        return 1
    known = sorted(set(days) - set(new))
    print(f"registered {len(new)} day(s) of {DAYS.name} in {home}: {', '.join(new) or '-'}"
          + (f" (already registered: {', '.join(known)})" if known else ""))
    return 0


def _serve(host: str, port: int, workers: int) -> int:
    """The API under uvicorn on ``host:port``; the app reads its settings from the environment."""
    from monitoring_pipeline.api.settings import HOST_ENV, TOKEN_ENV, is_loopback

    if not is_loopback(host) and not os.environ.get(TOKEN_ENV):
        print(f"monitoring-pipeline: serving on {host} (not a loopback address) needs {TOKEN_ENV}: every request "
              "from another machine must carry it", file=sys.stderr)
        return 1
    import uvicorn

    os.environ[HOST_ENV] = host  # the app (and every worker process) learns where it is bound
    uvicorn.run("monitoring_pipeline.api:app", host=host, port=port, workers=workers, log_level="info")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="monitoring-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for a job that holds the warehouse (default 10)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the warehouse's schema up to this code's")
    alerts = commands.add_parser("alerts", help="list, acknowledge or resolve alerts").add_subparsers(
        dest="action", required=True)
    listing = alerts.add_parser("list", help="open alerts, newest first")
    listing.add_argument("--model")
    listing.add_argument("--all", action="store_true",
                         help="every alert (acknowledged and resolved too) with its status")
    ack = alerts.add_parser("ack", help="acknowledge an open alert: it is not notified again")
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True)
    resolve = alerts.add_parser("resolve", help="resolve an open or acknowledged alert by hand (it is kept)")
    resolve.add_argument("alert_id")
    resolve.add_argument("--reason", required=True)
    models = commands.add_parser("models", help="model registry maintenance").add_subparsers(
        dest="action", required=True)
    trust = models.add_parser("trust", help="record the weights hash of a version registered without one")
    trust.add_argument("model")
    trust.add_argument("version")
    windows = commands.add_parser("windows", help="the days of the window partitions").add_subparsers(
        dest="action", required=True)
    add = windows.add_parser("add", help="register days in the Dagster instance of $DAGSTER_HOME")
    add.add_argument("days", nargs="+", metavar="DAY", help="ISO dates, e.g. 2026-01-06")
    commands.add_parser("ingest", help="ingest the predictions and labels the API accepted (the spool, "
                        "$MONITORING_SPOOL) into the warehouse, each once")
    serve = commands.add_parser("serve", help="the HTTP API (FastAPI under uvicorn); docs at /docs")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args.host, args.port, args.workers)
    if args.command == "windows":
        return _add_windows(args.days)
    if args.command == "alerts" and args.action == "resolve" and not args.reason.strip():
        parser.error("--reason must not be empty")
    path = warehouse_path()
    try:
        return _run(args, open_warehouse(path, timeout=args.wait, read_only=args.command == "alerts"
                                         and args.action == "list", create=False))
    except WarehouseError as error:
        print(f"monitoring-pipeline: {error}", file=sys.stderr)
    except database_errors() as error:
        print(f"monitoring-pipeline: {WarehouseError(path, str(error))}", file=sys.stderr)  # a query failed on it
    return 1


def _run(args: argparse.Namespace, wh: Warehouse) -> int:
    if args.command == "migrate":
        with wh.connect():
            print(f"warehouse {wh.name} is at schema version {LATEST}")
        return 0
    if args.command == "ingest":
        from monitoring_pipeline.lib.settings import spool_dir
        from monitoring_pipeline.storage.spool import drain

        spool = spool_dir()
        with wh.connect():  # the warehouse must exist (and be at this code's schema) even with nothing to ingest
            pass
        counts = drain(wh, spool).as_dict()
        print(f"spool {spool}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0
    if args.command == "models":
        try:
            digest = trust_checkpoint(wh, args.model, args.version)
        except ValueError as error:
            print(f"monitoring-pipeline: {error}", file=sys.stderr)
            return 1
        print(f"recorded sha256 {digest[:16]}... for {args.model} {args.version}; it loads from now on")
        return 0
    if args.action == "list":
        return _list(wh, args.model, args.all)
    if args.action == "resolve":
        if resolve_alert(wh, args.alert_id, args.reason):
            print(f"resolved {args.alert_id}: {args.reason.strip()}")
            return 0
        print(f"no open or acknowledged alert with id {args.alert_id!r}", file=sys.stderr)
        return 1
    if acknowledge_alert(wh, args.alert_id, args.by):
        print(f"acknowledged {args.alert_id} (by {args.by})")
        return 0
    print(f"no open alert with id {args.alert_id!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
