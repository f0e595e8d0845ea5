"""A small client for the monitoring API's intake (standard library only): a serving process
adds monitoring in two lines::

    monitor = MonitoringClient("http://127.0.0.1:8000", token)   # token: $MONITORING_API_TOKEN by default
    monitor.log("my_model", "v3", request_id, inputs, prediction, scores=probabilities, latency_ms=ms)

Rows are buffered and sent in batches of ``batch_size`` (``flush()`` sends the rest; a ``with``
block flushes on exit). The server answers 202 once a batch is durable; a repeated request id is
ignored there, so resending a batch whose answer was lost is safe. Connection errors and 503 are
retried with growing pauses; a 4xx is not: it raises ``MonitoringError`` with the server's detail.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

KINDS = ("inferences", "labels")
PATHS = {"inferences": "/v1/inferences", "labels": "/v1/labels"}


class MonitoringError(RuntimeError):
    """The server refused a batch (a 4xx, or a 5xx after the retries); ``status`` and ``detail`` say why."""

    def __init__(self, status: int, detail, rows: int):
        self.status, self.detail, self.rows = status, detail, rows
        super().__init__(f"the monitoring API answered {status} to a batch of {rows} rows: {_detail_text(detail)}")


def _detail_text(detail) -> str:
    if isinstance(detail, list):  # FastAPI's validation errors: each names its field
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in detail[:5]) + (
            f" (and {len(detail) - 5} more)" if len(detail) > 5 else "")
    return str(detail)


def _plain(value):
    """numpy scalars and arrays, pandas timestamps and datetimes as JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _missing_as_null(value):
    """NaN (how pandas and numpy write a missing value) as null, inside inputs."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _missing_as_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_missing_as_null(v) for v in value]
    return value


def _finite(name: str, value):
    if value is not None:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    return value


class MonitoringClient:
    """Buffers predictions (``log``) and labels (``label``) and posts them to the API in batches."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 10, batch_size: int = 500,
                 retries: int = 6, backoff: float = 0.25):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http(s)://host[:port], got {url!r}")
        if not 1 <= batch_size <= 10_000:
            raise ValueError(f"batch_size must be 1..10000, got {batch_size}")
        self.url, self._parts, self._prefix = url, parts, parts.path.rstrip("/")
        self._token = token if token is not None else os.environ.get("MONITORING_API_TOKEN")
        self.timeout, self.batch_size, self.retries, self.backoff = timeout, batch_size, retries, backoff
        self._buffers = {kind: [] for kind in KINDS}
        self._lock = threading.RLock()
        self._conn: http.client.HTTPConnection | None = None
        self.stats = {"batches": 0, "inferences": 0, "labels": 0, "duplicates_in_batch": 0, "retries": 0,
                      "unavailable": 0}
        self.batch_ids: list[str] = []

    def __repr__(self) -> str:  # never shows the token
        return f"MonitoringClient({self.url!r}, batch_size={self.batch_size})"

    def log(self, model: str, version: str | None, request_id: str, inputs: dict | None, prediction,
            scores=None, latency_ms: float | None = None, error: str | None = None, ts: datetime | None = None,
            *, confidence: float | None = None, input_hash: str | None = None) -> None:
        """Buffer one prediction; a full buffer is sent at once. ``inputs`` maps feature names to
        values (NaN is sent as a missing value); ``scores`` is {class: probability} or a list;
        ``ts`` defaults to now (UTC)."""
        if scores is not None:
            scores = {str(k): _finite(f"scores[{k!r}]", v) for k, v in scores.items()} if isinstance(scores, dict) \
                else [_finite(f"scores[{i}]", v) for i, v in enumerate(_plain(scores) if hasattr(scores, "tolist")
                                                                       else scores)]
        row = {"model": model, "version": None if version is None else str(version), "request_id": str(request_id),
               "ts": (ts or datetime.now(timezone.utc)).isoformat(),
               "inputs": None if inputs is None else _missing_as_null(dict(inputs)),
               "prediction": _plain(prediction) if hasattr(prediction, "tolist") else prediction,
               "scores": scores, "confidence": _finite("confidence", confidence),
               "latency_ms": _finite("latency_ms", latency_ms), "error": error, "input_hash": input_hash}
        self._add("inferences", {k: v for k, v in row.items() if v is not None})

    def log_many(self, records) -> None:
        """``log(**record)`` for each record (dicts with log's argument names)."""
        for record in records:
            self.log(**record)

    def label(self, request_id: str, label, labeled_at: datetime | None = None) -> None:
        """Buffer the ground truth of a request (the newest label of a request wins)."""
        row = {"request_id": str(request_id), "label": _plain(label) if hasattr(label, "tolist") else label}
        if labeled_at is not None:
            row["labeled_at"] = labeled_at.isoformat()
        self._add("labels", row)

    def flush(self) -> None:
        """Send every buffered row (predictions first, then labels)."""
        with self._lock:
            for kind in KINDS:
                while self._buffers[kind]:
                    self._send_next(kind)

    def close(self) -> None:
        """Flush, then close the connection."""
        try:
            self.flush()
        finally:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    def __enter__(self) -> MonitoringClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _add(self, kind: str, row: dict) -> None:
        with self._lock:
            self._buffers[kind].append(row)
            if len(self._buffers[kind]) >= self.batch_size:
                self._send_next(kind)

    def _send_next(self, kind: str) -> None:
        """Post the buffer's first batch. A refusal (4xx) drops the batch and raises; after the retries, a
        connection that cannot be made or a 5xx raises and leaves the batch buffered (the next flush resends it)."""
        batch = self._buffers[kind][:self.batch_size]
        try:
            answer = self._post(PATHS[kind], {kind: batch}, len(batch))
        except MonitoringError as error:
            if 400 <= error.status < 500:
                del self._buffers[kind][:len(batch)]
            raise
        del self._buffers[kind][:len(batch)]
        self.stats["batches"] += 1
        self.stats[kind] += answer["accepted"]
        self.stats["duplicates_in_batch"] += answer["duplicates_in_batch"]
        self.batch_ids.append(answer["batch_id"])

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
            self._conn = kind(self._parts.hostname, self._parts.port, timeout=self.timeout)
        return self._conn

    def _post(self, path: str, body: dict, rows: int) -> dict:
        data = json.dumps(body, default=_plain, allow_nan=False).encode()
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        pause = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                conn = self._connection()
                conn.request("POST", self._prefix + path, body=data, headers=headers)
                response = conn.getresponse()
                status, raw = response.status, response.read()
            except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out: retried
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                if last:
                    raise ConnectionError(f"the monitoring API at {self.url} cannot be reached after "
                                          f"{self.retries + 1} attempts: {error}") from error
                self.stats["retries"] += 1
                time.sleep(pause)
                pause = min(pause * 2, 8.0)
                continue
            try:
                answer = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                answer = {"detail": raw[:500].decode(errors="replace")}
            if status == 202:
                return answer
            if status == 503 and not last:
                self.stats["unavailable"] += 1
                self.stats["retries"] += 1
                retry_after = response.getheader("Retry-After")
                time.sleep(max(pause, float(retry_after)) if retry_after and retry_after.isdigit() else pause)
                pause = min(pause * 2, 8.0)
                continue
            raise MonitoringError(status, answer.get("detail", answer), rows)
        raise AssertionError("unreachable")
