"""`monitoring-pipeline`: the command line beside the Dagster UI.

    monitoring-pipeline alerts list [--model M] [--all]
    monitoring-pipeline alerts ack <alert_id> --by <name>

It works on the warehouse ($MONITORING_WAREHOUSE, else data/warehouse.duckdb).
"""

from __future__ import annotations

import argparse
import sys

from monitoring_pipeline.lib.settings import warehouse_path
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.results import acknowledge_alert, open_alerts


def _list(wh: Warehouse, model: str | None, everything: bool) -> int:
    if everything:
        frame = wh.read("""SELECT * FROM ml_monitoring_alerts WHERE (? IS NULL OR model_name = ?)
                           ORDER BY created_at DESC""", [model, model])
    else:
        frame = open_alerts(wh, model)
    if frame.empty:
        print("no open alerts" if not everything else "no alerts")
        return 0
    for a in frame.itertuples():
        acked = f"  acknowledged by {a.acknowledged_by}" if a.acknowledged_at is not None and a.acknowledged_at == a.acknowledged_at else ""
        print(f"{a.alert_id}  {a.severity:<8}  {a.alert_type:<18}  {a.model_name}  {a.partition_key or ''}  "
              f"{a.message[:100]}{acked}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="monitoring-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    alerts = commands.add_parser("alerts", help="list or acknowledge alerts").add_subparsers(dest="action",
                                                                                             required=True)
    listing = alerts.add_parser("list", help="open alerts, newest first")
    listing.add_argument("--model")
    listing.add_argument("--all", action="store_true", help="acknowledged ones too")
    ack = alerts.add_parser("ack", help="acknowledge an alert: it is not notified again")
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True)
    args = parser.parse_args(argv)
    wh = Warehouse(warehouse_path())
    if args.action == "list":
        return _list(wh, args.model, args.all)
    if acknowledge_alert(wh, args.alert_id, args.by):
        print(f"acknowledged {args.alert_id} (by {args.by})")
        return 0
    print(f"no open alert with id {args.alert_id!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
