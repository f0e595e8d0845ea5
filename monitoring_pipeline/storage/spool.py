"""The intake spool: predictions and labels the HTTP API accepted, kept as files until the
pipeline ingests them into ``inference_log`` / ``labels`` exactly once.

DuckDB lets one process write the warehouse at a time and a monitoring run may hold it, so the
API never writes the warehouse to accept a batch: ``Spool.accept`` writes the batch to one
JSON-lines file (a header line, then one line per row) under a temporary name, fsyncs it,
renames it into ``pending/`` and fsyncs the folder. The batch is durable when ``accept``
returns, and only then does the API answer 202.

``drain`` ingests pending files in the order they were accepted. Each batch is one warehouse
transaction that inserts its rows not stored yet (an anti-join on the row's identity:
(model_name, request_id) for a prediction, (request_id, label) for a label) and records the
batch id in ``ingested_batches``; only then is the file removed. A crash between the commit and
the removal leaves a file whose batch id is recorded: the next drain skips it. Drainers in
other threads and processes wait for each other on an flock of ``spool/drain.lock``. A file
that cannot be read whole (a truncated line, fewer rows than its header says) is moved to
``rejected/`` with a ``.reason`` file beside it and the other batches go on.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import random
import time
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .dialect import database_errors, is_bad_value, is_conflict
from .traffic import insert_new_inferences, insert_new_labels
from .warehouse import Warehouse, WarehouseError, open_warehouse

KINDS = ("inferences", "labels")
REQUIRED = {"inferences": ("model_name", "request_id", "ts"), "labels": ("request_id", "label", "labeled_at")}
NUMERIC = {"inferences": ("confidence", "latency_ms"), "labels": ()}
FORMAT = 1
HOLD_SECONDS = 0.5  # how long a drain keeps one connection (and the warehouse) before letting a run in
CONFLICT_RETRIES = 20
_ENCODER = json.JSONEncoder(default=str, allow_nan=False, ensure_ascii=False)  # one encoder for every row (json.dumps makes one per call)


@dataclass
class DrainCounts:
    """What one ``drain`` did: batches ingested, skipped (already recorded) and rejected, and the
    rows each kind received and inserted (received - inserted were already stored)."""

    batches: int = 0
    skipped: int = 0
    rejected: int = 0
    received: dict = field(default_factory=lambda: {k: 0 for k in KINDS})
    inserted: dict = field(default_factory=lambda: {k: 0 for k in KINDS})

    def as_dict(self) -> dict:
        return {"batches": self.batches, "skipped": self.skipped, "rejected": self.rejected,
                "inferences_received": self.received["inferences"], "inferences_inserted": self.inserted["inferences"],
                "labels_received": self.received["labels"], "labels_inserted": self.inserted["labels"]}


class SpoolFileError(ValueError):
    """A spool file that cannot be ingested; ``str()`` says why."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> datetime:
    """Now in UTC, without a zone (how the warehouse's TIMESTAMP columns hold times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _check_row(kind: str, i: int, row: dict) -> None:
    missing = [name for name in REQUIRED[kind] if row.get(name) in (None, "")]
    if missing:
        raise ValueError(f"{kind} row {i}: missing {', '.join(missing)}")
    for name in NUMERIC[kind]:
        value = row.get(name)
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise ValueError(f"{kind} row {i}: {name} must be a finite number, got {value!r}")
    if kind == "inferences":  # JSON text (the API encodes them once, so a drain need not again) or values
        if not isinstance(row.get("features"), (dict, str, type(None))):
            raise ValueError(f"{kind} row {i}: features must be an object of feature values")
        if not isinstance(row.get("scores"), (dict, list, str, type(None))):
            raise ValueError(f"{kind} row {i}: scores must be an object (class -> probability) or a list")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class Spool:
    """The spool folder: ``pending/`` (accepted, not ingested), ``rejected/`` (unreadable files and
    their reasons), ``tmp/`` (files being written) and ``drain.lock``."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.pending = self.root / "pending"
        self.rejected = self.root / "rejected"
        self.tmp = self.root / "tmp"

    def accept(self, kind: str, rows: list[dict], *, accepted_at: datetime | None = None) -> str:
        """Write ``rows`` (dicts with the warehouse's column names) durably as one batch; returns its
        batch id. ValueError for an unknown kind, an empty batch or a row missing a required field."""
        if kind not in KINDS:
            raise ValueError(f"unknown batch kind {kind!r}; one of {KINDS}")
        if not rows:
            raise ValueError(f"an empty {kind} batch")
        for i, row in enumerate(rows):
            _check_row(kind, i, row)
        batch_id = str(uuid.uuid4())
        accepted_at = accepted_at or _now()
        header = {"format": FORMAT, "batch_id": batch_id, "kind": kind, "rows": len(rows),
                  "accepted_at": accepted_at.isoformat()}
        lines = [json.dumps(header)] + [_ENCODER.encode(row) for row in rows]
        try:
            data = ("\n".join(lines) + "\n").encode("utf-8")
        except UnicodeEncodeError as error:
            bad = next(i for i, line in enumerate(lines[1:]) if not _is_utf8(line))
            raise ValueError(f"{kind} row {bad}: text that is not valid Unicode ({error.reason})") from error
        for folder in (self.pending, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{kind}-{batch_id}.jsonl"
        temporary = self.tmp / name
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.pending / name)
        _fsync_dir(self.pending)
        return batch_id

    def pending_files(self) -> list[Path]:
        """Accepted batches not ingested yet, oldest first."""
        return sorted(self.pending.glob("*.jsonl")) if self.pending.is_dir() else []

    def rejected_files(self) -> list[Path]:
        return sorted(self.rejected.glob("*.jsonl")) if self.rejected.is_dir() else []

    @contextmanager
    def lock(self):
        """Hold ``drain.lock`` (an flock: one drainer at a time across threads and processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "drain.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def reject(self, path: Path, reason: str) -> None:
        """Move an unreadable file to ``rejected/`` with ``<name>.reason`` beside it (a finding, kept)."""
        self.rejected.mkdir(parents=True, exist_ok=True)
        (self.rejected / (path.name + ".reason")).write_text(reason + "\n", encoding="utf-8")
        os.replace(path, self.rejected / path.name)
        _fsync_dir(self.rejected)


def read_batch(path: Path) -> tuple[dict, list[dict]]:
    """A spool file's header and rows; SpoolFileError naming the problem when it is not whole."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SpoolFileError(f"not UTF-8 text: {error}") from error
    if not text.endswith("\n"):
        raise SpoolFileError("the last line is cut off (no final newline): the file was not written whole")
    lines = text.splitlines()
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError as error:
        raise SpoolFileError(f"line 1 (the header) is not JSON: {error}") from error
    if not isinstance(header, dict) or header.get("kind") not in KINDS or not header.get("batch_id") \
            or not isinstance(header.get("rows"), int):
        raise SpoolFileError("line 1 is not a batch header (format, batch_id, kind, rows, accepted_at)")
    if header.get("format") != FORMAT:
        raise SpoolFileError(f"spool format {header.get('format')!r}; this code reads format {FORMAT}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise SpoolFileError(f"line {number} is not JSON: {error}") from error
        if not isinstance(row, dict):
            raise SpoolFileError(f"line {number} is not a JSON object")
        try:
            _check_row(header["kind"], number - 2, row)
        except ValueError as error:
            raise SpoolFileError(f"line {number}: {error}") from error
        rows.append(row)
    if len(rows) != header["rows"]:
        raise SpoolFileError(f"the header says {header['rows']} rows, the file holds {len(rows)}")
    return header, rows


def _frame(kind: str, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("features", "scores"):  # dicts and lists stay whole (JSON values)
        if kind == "inferences" and column in frame.columns:
            frame[column] = [r.get(column) for r in rows]
    return frame


def _ingest(conn, header: dict, rows: list[dict]) -> int | None:
    """One transaction on ``conn``: the batch's new rows and its ``ingested_batches`` row. None when
    the batch was recorded before (a drain that committed and stopped before removing the file).
    Retried whole when another writer of this process conflicts, as ``Warehouse.write`` does."""
    kind, frame = header["kind"], _frame(header["kind"], rows)
    for attempt in range(CONFLICT_RETRIES + 1):
        conn.execute("BEGIN TRANSACTION")
        try:
            if conn.execute("SELECT 1 FROM ingested_batches WHERE batch_id = ?", [header["batch_id"]]).fetchone():
                conn.execute("ROLLBACK")
                return None
            inserted = insert_new_inferences(conn, frame) if kind == "inferences" else insert_new_labels(conn, frame)
            conn.execute("""INSERT INTO ingested_batches (batch_id, kind, rows_received, rows_inserted, accepted_at)
                            VALUES (?, ?, ?, ?, ?)""",
                         [header["batch_id"], kind, len(rows), inserted, header.get("accepted_at")])
            conn.execute("COMMIT")
            return inserted
        except BaseException as error:
            with suppress(*database_errors()):  # the original error is what matters
                conn.execute("ROLLBACK")
            if not (is_conflict(error) and attempt < CONFLICT_RETRIES):
                raise
        time.sleep(0.05 + random.random() * 0.2)
    raise AssertionError("unreachable")


def drain(wh: Warehouse, spool: Spool | Path | str, *, limit: int | None = None) -> DrainCounts:
    """Ingest the spool's pending batches (at most ``limit``), oldest first, each exactly once.

    Batches share a connection for up to HOLD_SECONDS (opening one costs tens of milliseconds), each
    in its own transaction; then the connection is closed so a waiting run gets the warehouse. A
    WarehouseError (the warehouse locked past its timeout) stops the drain: what was committed stays
    committed and the rest waits, durable, for the next drain."""
    spool = spool if isinstance(spool, Spool) else Spool(spool)
    counts = DrainCounts()
    if not spool.pending.is_dir():
        return counts
    with spool.lock():
        paths = spool.pending_files()[:limit]
        while paths:
            with wh.connect() as conn:
                held = time.monotonic()
                while paths and time.monotonic() - held < HOLD_SECONDS:
                    _drain_one(conn, spool, paths.pop(0), counts)
    return counts


def _drain_one(conn, spool: Spool, path: Path, counts: DrainCounts) -> None:
    if not path.exists():  # removed by a drainer that held the lock before us
        return
    try:
        header, rows = read_batch(path)
    except SpoolFileError as error:
        spool.reject(path, str(error))
        counts.rejected += 1
        return
    try:
        inserted = _ingest(conn, header, rows)
    except Exception as error:
        if not (isinstance(error, ValueError) or is_bad_value(error)):
            raise
        spool.reject(path, f"its rows cannot be stored: {' '.join(str(error).split())}")
        counts.rejected += 1
        return
    if inserted is None:
        counts.skipped += 1
    else:
        counts.batches += 1
        counts.received[header["kind"]] += len(rows)
        counts.inserted[header["kind"]] += inserted
    path.unlink()


def drain_forever(spool: Path | str, warehouse: Path | str, *, timeout: float, interval: float, wake, stop) -> None:
    """Drain ``spool`` into ``warehouse`` every ``interval`` seconds, or when ``wake`` is set, until
    ``stop`` is set (``multiprocessing`` events: the HTTP API runs this in a process of its own, so
    ingesting never takes the interpreter from the requests it answers). A warehouse held by a run
    past ``timeout`` is logged and retried on the next tick; the batches wait, durable, in the spool."""
    log = logging.getLogger("monitoring_pipeline.spool")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    spool, wh = Spool(spool), open_warehouse(warehouse, timeout=timeout)
    while not stop.is_set():
        wake.wait(interval)
        wake.clear()
        if stop.is_set() or not spool.pending_files():
            continue
        try:
            counts = drain(wh, spool)
        except (WarehouseError, OSError, *database_errors()) as error:  # the batches stay in the spool
            log.warning("spool drain postponed: %s", " ".join(str(error).split()))
            continue
        log.info("spool drained: %s", counts.as_dict())
