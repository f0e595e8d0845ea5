"""Load on the HTTP API (`monitoring-pipeline serve`): reads at 50 concurrent requests and
`POST /v1/inferences` in batches of 500 rows, each without and with a monitoring run writing.

    python benchmarks/api_load.py [--home DIR] [--workers 1 2] [--reads 4000] [--batches 200] [--repeats 3]

The warehouse is filled by real `dagster job execute` runs of monitoring_job on a few
breast_cancer_classifier days (a reusable ``--home`` skips that the second time). The real
server (uvicorn) runs in its own process; the load comes from another process on 127.0.0.1:
threads with one keep-alive ``http.client`` connection each, a fixed number of requests and a
duration cap. "writer" phases start real monitoring_job runs on new days back to back and begin
the load once the first run executes its steps. A route that answers FastAPI's bare 404 is not
served yet: it is reported missing and left out of the load. The client's own ceiling is measured
first against a null server (an asyncio stub answering ``{}``), so the numbers are the server's.
Each phase is loaded ``--repeats`` times and the median load is shown: the machine may be shared.
Targets: read p95 < 75 ms at 50 concurrent; ingestion >= 20,000 rows/s in batches of 500.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import itertools
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitoring_pipeline_tests.dagster_processes import stop  # noqa: E402  (SIGINT to the group, SIGKILL if it hangs)
from monitoring_pipeline_tests.receivers import free_port  # noqa: E402
MODEL = "breast_cancer_classifier"
TOKEN = "api-load-benchmark-token"
BUILD_DAYS = [date(2026, 1, 5) + timedelta(days=i) for i in range(3)]
WRITER_START = date(2026, 1, 10)  # writer phases run new days from here
READ_P95_MS, INGEST_ROWS_S = 75.0, 20_000


def read_paths(model: str) -> list[str]:
    return ["/monitoring/drift/status", "/monitoring/drift/history", f"/monitoring/drift/{model}",
            f"/monitoring/performance/{model}", "/monitoring/alerts", "/api/ml/health", "/api/ml/metrics", "/metrics"]


def monitors_file(home: Path) -> Path:
    """The project's monitors file with MODEL alone: the API's health then judges the one model the
    benchmark monitors (the others would never have a run here, and health would answer 503)."""
    path = home / "monitors.yaml"
    if not path.exists():
        config = yaml.safe_load((ROOT / "data" / "monitors.yaml").read_text())
        config["monitors"] = [m for m in config["monitors"] if m["name"] == MODEL]
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def env_for(home: Path) -> dict:
    return {**os.environ, "DAGSTER_HOME": str(home), "MONITORING_WAREHOUSE": str(home / "w.duckdb"),
            "MONITORING_MONITORS": str(monitors_file(home)),
            "MONITORING_MODELS": str(home / "models"), "MONITORING_REPORTS": str(home / "reports"),
            "MONITORING_METRICS": str(home / "monitoring.prom"), "MONITORING_SPOOL": str(home / "spool"),
            "MONITORING_API_TOKEN": TOKEN}


def job(home: Path, day: date, **kwargs) -> subprocess.Popen:
    """A real `dagster job execute` of monitoring_job on ``day`` of MODEL."""
    tags = json.dumps({"dagster/partition": f"{day}|{MODEL}"})
    return subprocess.Popen([str(BIN / "dagster"), "job", "execute", "-m", "monitoring_pipeline", "-j",
                             "monitoring_job", "--tags", tags], cwd=home, env=env_for(home), **kwargs)


def build(home: Path) -> None:
    """Fill ``home``'s warehouse with monitoring runs on BUILD_DAYS (skipped when already done)."""
    marker = home / "api_load_built"
    if marker.exists():
        print(f"warehouse: {home / 'w.duckdb'} (built before: {marker.read_text().strip()})")
        return
    home.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([str(BIN / "dagster"), "instance", "migrate"], env=env_for(home), capture_output=True,
                         text=True, check=False)
    if out.returncode:
        sys.exit(out.stderr[-2000:])
    for day in BUILD_DAYS:
        started = time.perf_counter()
        process = job(home, day, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log = process.communicate()[0]
        if process.returncode:
            sys.exit(f"monitoring_job on {day} failed:\n{log[-3000:]}")
        print(f"warehouse: monitoring_job on {day}|{MODEL} in {time.perf_counter() - started:.1f} s")
    marker.write_text(", ".join(str(d) for d in BUILD_DAYS) + "\n")


class Writer(threading.Thread):
    """Monitoring runs on new days back to back until stopped; ``executing`` is set once the first
    run's steps start (Dagster's start-up is over and it reads and writes the warehouse)."""

    days = itertools.count()

    def __init__(self, home: Path):
        super().__init__(daemon=True)
        self.home, self.stop, self.executing, self.runs = home, threading.Event(), threading.Event(), []

    def run(self) -> None:
        while not self.stop.is_set():
            day = WRITER_START + timedelta(days=next(self.days))
            started = time.perf_counter()
            process = job(self.home, day, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            tail = []
            for line in process.stdout:
                if "STEP_START" in line:
                    self.executing.set()
                tail = (tail + [line])[-40:]
            process.wait()
            self.runs.append((str(day), process.returncode, time.perf_counter() - started))
            if process.returncode:
                print(f"  writer: monitoring_job on {day} exited {process.returncode}:\n{''.join(tail)}")
                self.executing.set()


@contextlib.contextmanager
def server(command: list[str], env: dict, log: Path, probe: str):
    """Start ``command`` (its port already chosen), wait until ``probe`` answers, stop it after."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{command[:3]} did not start: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(probe, timeout=5):
                break
            time.sleep(0.2)
        yield process
    finally:
        stop(process)


# ---- the load client (its own process: `--client SPEC`) ----

def inference_rows(n: int) -> list[dict]:
    """``n`` rows of breast_cancer_classifier traffic as the API takes them (real feature rows)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    features = data.drop(columns="target")
    rows = []
    for i in range(n):
        j = i % len(data)
        label = int(data["target"].iloc[j])
        rows.append({"model": MODEL, "version": "v1", "request_id": f"REQID-{i:03d}",
                     "timestamp": f"2026-03-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
                     "inputs": {k: float(v) for k, v in features.iloc[j].items()},
                     "prediction": str(label), "scores": {"0": 0.2 + 0.6 * (1 - label), "1": 0.2 + 0.6 * label},
                     "latency_ms": 3.5, "error": None})
    return rows


def client(spec: dict) -> dict:
    """Send the load of ``spec`` and return what came back: per path the status codes, the latencies'
    percentiles overall, wall and CPU seconds of this process."""
    host, port = spec["host"], spec["port"]
    headers = {"Authorization": f"Bearer {spec['token']}", "Content-Type": "application/json"}
    if spec["kind"] == "ingest":
        prefix = uuid.uuid4().hex[:12]
        template = json.dumps({"inferences": inference_rows(spec["batch_rows"])}).encode()
        template = template.replace(b"REQID-", f"{prefix}-BATCH#-".encode())

        def request(i):
            return "POST", "/v1/inferences", template.replace(b"BATCH#", b"%06d" % i)
    else:
        paths = spec["paths"]

        def request(i):
            return "GET", paths[i % len(paths)], None
    counter, n = itertools.count(), spec["n"]
    results = []  # (path, status, seconds); list.append is atomic
    deadline = time.perf_counter() + spec["max_seconds"]

    def connect():
        conn = http.client.HTTPConnection(host, port, timeout=120)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def worker():
        conn = connect()
        while (i := next(counter)) < n and time.perf_counter() < deadline:
            method, path, body = request(i)
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:  # counted, and the connection renewed
                status = type(error).__name__
                conn.close()
                conn = connect()
            results.append((path, status, time.perf_counter() - started))
        conn.close()

    cpu0, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(spec["concurrency"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu1 = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    codes, per_path = defaultdict(Counter), defaultdict(list)
    for path, status, seconds in results:
        codes[path][str(status)] += 1
        per_path[path].append(seconds)
    return {"n": len(results), "wall": wall, "cpu": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
            "codes": {p: dict(c) for p, c in codes.items()},
            "all": percentiles([s for _, _, s in results]),
            "per_path": {p: percentiles(s) for p, s in per_path.items()}}


def percentiles(seconds: list[float]) -> dict:
    if len(seconds) < 2:
        return {"p50": None, "p95": None, "p99": None}
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {"p50": cuts[49] * 1000, "p95": cuts[94] * 1000, "p99": cuts[98] * 1000}


def run_client(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--client", json.dumps(spec)], capture_output=True, text=True,
                         check=False)
    if out.returncode:
        sys.exit(f"the load client failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


# ---- the null server: the client's own ceiling ----

async def null_server(port: int) -> None:
    """Answer every HTTP/1.1 request with ``{}`` on a keep-alive connection, doing no work."""
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                               if line.startswith(b"content-length:")), 0)
                if length:
                    await reader.readexactly(length)
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async with await asyncio.start_server(serve, "127.0.0.1", port, backlog=256) as srv:
        await srv.serve_forever()


# ---- the phases and the table ----

def probe(port: int, requests: list[tuple[str, str]], repeat: int = 15) -> tuple[list[str], list[str], dict]:
    """The ``(method, path)`` requests the server serves, the missing ones (FastAPI's bare 404: no route
    yet), and each served GET's median milliseconds alone (``repeat`` requests one after another on one
    connection: its cost without concurrency). A POST is probed with ``{}`` (a 422 when served)."""
    served, missing, alone = [], [], {}
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for method, path in requests:
        seconds = []
        for _ in range(repeat if method == "GET" else 1):
            started = time.perf_counter()
            conn.request(method, path, body=b"{}" if method == "POST" else None, headers=headers)
            response = conn.getresponse()
            body = response.read()
            seconds.append(time.perf_counter() - started)
        if response.status == 404 and body == b'{"detail":"Not Found"}':
            missing.append(path)
        else:
            served.append(path)
            alone[path] = (1000 * statistics.median(seconds), response.status)
    conn.close()
    return served, missing, alone


def non_2xx(result: dict) -> str:
    bad = Counter()
    for codes in result["codes"].values():
        bad.update({c: k for c, k in codes.items() if not c.startswith("2")})
    return " ".join(f"{c}x{k}" for c, k in sorted(bad.items())) or "0"


def row(label: str, result: dict, rows_per_request: int, target: str, writer_runs: str = "") -> str:
    ok = sum(k for codes in result["codes"].values() for c, k in codes.items() if c.startswith("2"))
    p = result["all"]
    fmt = (lambda v: f"{v:7.1f}" if v is not None else "      -")
    rate = result["n"] / result["wall"] if result["wall"] else 0
    rows_s = f"{ok * rows_per_request / result['wall']:9.0f}" if rows_per_request else "        -"
    cpu = 1000 * result["cpu"] / max(result["n"], 1)
    load = f"{result['load']:5.1f}" if "load" in result else "    -"
    return (f"{label:<28} | {result['n']:>6} | {result['wall']:6.1f} | {rate:7.1f} | {rows_s} | {fmt(p['p50'])} | "
            f"{fmt(p['p95'])} | {fmt(p['p99'])} | {cpu:6.2f} | {load} | {non_2xx(result):<14} | {target}{writer_runs}")


HEADER = (f"{'phase':<28} | {'reqs':>6} | {'secs':>6} | {'req/s':>7} | {'rows/s':>9} | {'p50 ms':>7} | {'p95 ms':>7} | "
          f"{'p99 ms':>7} | {'cpu ms':>6} | {'load':>5} | {'non-2xx':<14} | target")


def verdict(value: float | None, goal: float, below: bool) -> str:
    if value is None:
        return "no answers"
    met = value < goal if below else value >= goal
    return ("MET" if met else "MISSED") + (f" (p95 < {goal:.0f} ms)" if below else f" (>= {goal:,.0f} rows/s)")


def headline(result: dict, kind: str, batch_rows: int) -> float:
    """What a phase is judged by: a read's p95 ms, ingestion's accepted rows/s (0 when none)."""
    if kind == "reads":
        return result["all"]["p95"] if result["all"]["p95"] is not None else float("inf")
    return ok_rows_per_s(result, batch_rows) or 0.0


def median_run(runs: list[dict], kind: str, batch_rows: int) -> dict:
    """The run with the median headline of ``runs`` (the machine is shared: one run can be unlucky),
    with the range of the headline over all of them in ``spread``."""
    ordered = sorted(runs, key=lambda r: headline(r, kind, batch_rows))
    return {**ordered[len(ordered) // 2], "spread": (headline(ordered[0], kind, batch_rows),
                                                     headline(ordered[-1], kind, batch_rows), len(runs))}


def phases(args, home: Path, port: int, paths: list[str], ingest_served: bool, label: str) -> list[tuple[str, dict]]:
    spec = {"host": "127.0.0.1", "port": port, "token": TOKEN, "max_seconds": args.max_seconds}
    reads = {**spec, "kind": "reads", "paths": paths, "n": args.reads, "concurrency": args.concurrency}
    ingest = {**spec, "kind": "ingest", "n": args.batches, "concurrency": args.senders, "batch_rows": args.batch_rows}
    out = []
    for kind, load in (("reads", reads), ("ingest", ingest)):
        if not (paths if kind == "reads" else ingest_served):
            continue
        for writing in (False, True):
            writer = None
            if writing:
                writer = Writer(home)
                writer.start()
                writer.executing.wait()
            runs = []
            for _ in range(args.repeats):
                load_before = os.getloadavg()[0]
                runs.append(run_client(load))
                runs[-1]["load"] = max(load_before, os.getloadavg()[0])
            result = median_run(runs, kind, args.batch_rows)
            if writer:
                writer.stop.set()
                writer.join()
                result["writer"] = writer.runs
            name = f"{label} {kind}" + (" + run" if writing else "")
            out.append((name, result))
            print(f"  {name}: {args.repeats} x {load['n']} requests, the median in {result['wall']:.1f} s"
                  + (f", writer runs {writer.runs}" if writer else ""), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a reusable folder for the instance and warehouse "
                        "(default: a temporary one)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker processes to try")
    parser.add_argument("--reads", type=int, default=4000, help="read requests per phase")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent read requests")
    parser.add_argument("--batches", type=int, default=200, help="POST /v1/inferences batches per phase")
    parser.add_argument("--batch-rows", type=int, default=500)
    parser.add_argument("--senders", type=int, default=4, help="concurrent ingestion clients")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="duration cap of one load")
    parser.add_argument("--repeats", type=int, default=3, help="loads per phase; the table shows the median one")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: run a load client, print JSON
    parser.add_argument("--null-server", type=int, help=argparse.SUPPRESS)  # internal: the null server
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(json.loads(args.client))))
        return
    if args.null_server:
        asyncio.run(null_server(args.null_server))
        return
    with contextlib.ExitStack() as stack:
        home = args.home or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        home = home.resolve()
        build(home)
        table = []
        port = free_port()
        with server([sys.executable, __file__, "--null-server", str(port)], os.environ, home / "null_server.log",
                    f"http://127.0.0.1:{port}/"):
            spec = {"host": "127.0.0.1", "port": port, "token": TOKEN, "max_seconds": args.max_seconds}
            table.append(("client alone: reads", run_client(
                {**spec, "kind": "reads", "paths": read_paths(MODEL), "n": args.reads, "concurrency": args.concurrency})))
            table.append(("client alone: ingest", run_client(
                {**spec, "kind": "ingest", "n": args.batches, "concurrency": args.senders,
                 "batch_rows": args.batch_rows})))
        missing, per_path, costs = [], [], []
        for workers in args.workers:
            port = free_port()
            command = [str(BIN / "monitoring-pipeline"), "serve", "--host", "127.0.0.1", "--port", str(port),
                       "--workers", str(workers)]
            with server(command, env_for(home), home / f"api_workers{workers}.log",
                        f"http://127.0.0.1:{port}/openapi.json"):
                paths, missing, alone = probe(port, [("GET", p) for p in read_paths(MODEL)] + [("POST", "/v1/inferences")])
                costs.append((workers, alone))
                reads = [p for p in paths if p != "/v1/inferences"]
                results = phases(args, home, port, reads, "/v1/inferences" in paths,
                                 f"{workers} worker{'s' * (workers > 1)}:")
                table += results
                per_path += [(name, r) for name, r in results if "reads" in name]
    print(f"\nload from a second process on 127.0.0.1; {args.concurrency} concurrent reads, {args.senders} senders of "
          f"{args.batch_rows}-row batches; '+ run': a monitoring_job run writes the warehouse meanwhile; "
          "cpu ms: the client's CPU per request; load: the machine's 1-minute load average (2 cores here); "
          f"each phase: the median of {args.repeats} loads (by p95 or rows/s; their range in the last column)")
    print(HEADER)
    print("-" * len(HEADER))
    for name, result in table:
        ingest = "ingest" in name
        target = (verdict(ok_rows_per_s(result, args.batch_rows), INGEST_ROWS_S, below=False) if ingest
                  else verdict(result["all"]["p95"], READ_P95_MS, below=True))
        runs = ""
        if "spread" in result:
            low, high, n = result["spread"]
            runs = f"; {n} loads: {low:,.1f}-{high:,.1f} ms" if not ingest else f"; {n} loads: {low:,.0f}-{high:,.0f}"
        if "writer" in result:
            runs += f"; runs {', '.join(f'{d} exit {c}' for d, c, _ in result['writer'])}"
        print(row(name, result, args.batch_rows if ingest else 0, target if "client" not in name else "-", runs))
    if missing:
        print(f"\nnot served yet (404, no route): {', '.join(missing)}")
    print("\neach read alone: median ms of 15 requests one after another (status)")
    for workers, alone in costs:
        print(f"{workers} worker{'s' * (workers > 1)}:".ljust(29) + "; ".join(
            f"{p} {ms:.1f} ({status})" for p, (ms, status) in alone.items() if p != "/v1/inferences"))
    print("\nper read endpoint at load: p95 ms (status codes)")
    for name, result in per_path:
        print(f"{name:<28} " + "; ".join(
            f"{p} {result['per_path'][p]['p95'] or 0:.1f} ({' '.join(f'{c}x{k}' for c, k in result['codes'][p].items())})"
            for p in result["per_path"]))


def ok_rows_per_s(result: dict, batch_rows: int) -> float | None:
    ok = sum(k for c, k in result["codes"].get("/v1/inferences", {}).items() if c.startswith("2"))
    return ok * batch_rows / result["wall"] if ok else None


if __name__ == "__main__":
    main()
