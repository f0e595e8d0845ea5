"""How long a receiver that trickles one byte every 5 s holds alert delivery.

    python benchmarks/delivery_deadline.py [--deadlines 2,5,15] [--alerts 3]

Slack points at a receiver on 127.0.0.1 that accepts, reads the request, and then
sends one byte every 5 seconds for as long as the client stays (the case issue 11
found holding a delivery for more than 140 s). The JSON webhook points at a receiver
that answers at once. For each deadline (``ALERT_DELIVERY_DEADLINE_S``) ``--alerts``
critical alerts are stored in a fresh warehouse and ``lib.notify.notify`` delivers
them with its default retries: the table shows the wall time of the whole step, what
became of Slack (attempts, status, reason) and whether every alert still reached the
webhook.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_pipeline.alerts import channels_from_env, policy_of  # noqa: E402
from monitoring_pipeline.core.alert_rules import Alert, alert_id  # noqa: E402
from monitoring_pipeline.lib.notify import notify  # noqa: E402
from monitoring_pipeline.storage import Warehouse  # noqa: E402
from monitoring_pipeline.storage.deliveries import delivery_status  # noqa: E402
from monitoring_pipeline.storage.results import upsert_alerts  # noqa: E402
from monitoring_pipeline_tests.receivers import SlowLoris  # noqa: E402

EVERY_S = 5.0


class Webhook(ThreadingHTTPServer):
    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def _alert(i: int) -> Alert:
    day, feature = f"2026-01-{i + 1:02d}", f"x{i}"  # another feature each: no alert is a duplicate
    return Alert(alert_id("bench", day, "DRIFT_DETECTED", "data", [feature]), "critical", "DRIFT_DETECTED", "bench",
                 day, f"data drift alert on 1 of 3 features: {feature}", "Retrain.", "data", (feature,), "v1", {})


def measure(deadline_s: float, n_alerts: int) -> dict:
    # one byte every EVERY_S seconds for as long as the client stays (its byte limit is never reached)
    trickle, hook = SlowLoris(b"HTTP/1.1 200 OK\r\n", every=EVERY_S, limit=10_000), Webhook()
    env = {"SLACK_WEBHOOK_URL": f"http://127.0.0.1:{trickle.port}/services/T/B/token",
           "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{hook.server_port}/hook",
           "ALERT_DELIVERY_DEADLINE_S": str(deadline_s)}
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "w.duckdb")
        for i in range(n_alerts):
            upsert_alerts(wh, [_alert(i)], asset_key="bench", partition_key=f"2026-01-{i + 1:02d}|bench", run_id=None)
        start = time.monotonic()
        notify(wh, "bench", policy_of({"routes": ["slack", "webhook"]}), channels_from_env(env))
        elapsed = time.monotonic() - start
        status = delivery_status(wh)
        slack = status[status["channel"] == "slack"]
    trickle.close()
    hook.shutdown()
    return {"deadline": deadline_s, "seconds": elapsed, "slack_attempts": int(slack["attempts"].sum()),
            "slack_failed": int((slack["status"] == "failed").sum()), "reason": str(slack["last_error"].iloc[0]),
            "webhook": len(hook.received)}


def main() -> None:
    logging.getLogger("monitoring_pipeline.alerts").setLevel(logging.ERROR)  # the log channel's copies
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadlines", default="2,5,15")
    parser.add_argument("--alerts", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.alerts} critical alerts; Slack receiver sends 1 byte every {EVERY_S:g} s; webhook answers at once")
    print(f"{'deadline s':>10} | {'step s':>7} | {'slack attempts':>14} | {'slack failed':>12} | "
          f"{'webhook got':>11} | slack reason")
    for deadline in (float(d) for d in args.deadlines.split(",")):
        r = measure(deadline, args.alerts)
        print(f"{r['deadline']:>10g} | {r['seconds']:>7.1f} | {r['slack_attempts']:>14} | "
              f"{r['slack_failed']:>9}/{args.alerts:<2} | {r['webhook']:>8}/{args.alerts:<2} | {r['reason'][:70]}")


if __name__ == "__main__":
    main()
