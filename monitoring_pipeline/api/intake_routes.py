"""The intake: ``POST /v1/inferences`` and ``POST /v1/labels``.

A batch is answered 202 only once it is durable in the spool (``storage.spool``: one fsynced
file), whatever a monitoring run is doing to the warehouse. A drainer process of the app's ingests
the spool into ``inference_log`` / ``labels`` about once a second (and soon after each batch),
exactly once; a run that holds the warehouse only delays it. The pipeline's traffic step and
``monitoring-pipeline ingest`` drain it too.
"""

from __future__ import annotations

import math
import multiprocessing
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from monitoring_pipeline.storage.spool import Spool, drain_forever
from monitoring_pipeline.storage.traffic import WINDOW_COLUMNS

from .auth import require_write
from .errors import Unavailable, responses

MAX_ROWS = 10_000
router = APIRouter(tags=["intake"])

Scalar = str | int | float | bool | None
Finite = Annotated[float, Field(allow_inf_nan=False)]


EARLIEST, LATEST = datetime(1900, 1, 1), datetime(2200, 1, 1)  # inside what pandas (and so a window) can hold


def _utc_naive(value: datetime) -> datetime:
    """A time as the warehouse holds it: UTC without a zone (a naive time is taken as UTC)."""
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _in_range(value: datetime | None) -> datetime | None:
    if value is not None and not EARLIEST <= value.replace(tzinfo=None) < LATEST:
        raise ValueError(f"must be between {EARLIEST.date()} and {LATEST.date()}")
    return value


def _not_finite(value):
    """The first NaN or infinity inside a JSON value, else None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:  # a plain loop: 15,000 values a batch, most of them floats
        if isinstance(item, float):
            if not math.isfinite(item):
                return item
        elif isinstance(item, (dict, list)):
            bad = _not_finite(item)
            if bad is not None:
                return bad
    return None


class Inference(BaseModel):
    """One prediction a serving process made."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="the monitored model's name")
    version: str | None = Field(None, max_length=200, description="the model version that answered")
    request_id: str = Field(min_length=1, max_length=200, description="unique per model; a repeat is ignored")
    ts: datetime | None = Field(None, validation_alias=AliasChoices("ts", "timestamp"),
                                description="when it was answered (default: when the batch was accepted); "
                                            "a time without a zone is UTC")
    inputs: dict[str, Any] | None = Field(
        None, description="the input features by name (numbers, text, booleans, lists; null for a missing value)")
    input_hash: str | None = Field(None, max_length=200, description="a hash of the input, when inputs are not sent")
    prediction: Scalar = Field(None, description="the predicted class or value")
    scores: dict[str, Finite] | list[Finite] | None = Field(
        None, description="class probabilities in [0, 1]: {class: probability} or a list")
    confidence: Finite | None = Field(None, ge=0, le=1, description="the top class's probability "
                                                                     "(default: the largest score)")
    latency_ms: Finite | None = Field(None, ge=0)
    error: str | None = Field(None, max_length=2000, description="the serving error, when it failed")

    _ts_range = field_validator("ts")(_in_range)

    @field_validator("inputs")
    @classmethod
    def _finite_inputs(cls, inputs):
        clash = sorted(set(inputs or {}) & set(WINDOW_COLUMNS))
        if clash:
            raise ValueError(f"input names {clash} are the window's own columns; rename them")
        if inputs and _not_finite(inputs) is not None:  # then find which input, for the message
            name, bad = next((n, _not_finite(v)) for n, v in inputs.items() if _not_finite(v) is not None)
            raise ValueError(f"input {name!r} holds {bad}: send null for a missing value")
        return inputs

    @field_validator("scores")
    @classmethod
    def _probabilities(cls, scores):
        values = list(scores.values()) if isinstance(scores, dict) else scores or []
        bad = [v for v in values if not 0 <= v <= 1]
        if bad:
            raise ValueError(f"scores must be probabilities in [0, 1]; got {bad[0]}")
        return scores

    @model_validator(mode="after")
    def _confidence(self):
        if self.confidence is None and self.scores:
            values = self.scores.values() if isinstance(self.scores, dict) else self.scores
            self.confidence = max(values)
        return self

    def row(self, accepted_at: datetime) -> dict:
        return {"ts": _utc_naive(self.ts or accepted_at).isoformat(), "model_name": self.model,
                "model_version": self.version, "request_id": self.request_id, "input_hash": self.input_hash,
                "features": None if self.inputs is None else to_json(self.inputs).decode(),
                "prediction": self.prediction, "confidence": self.confidence,
                "scores": None if self.scores is None else to_json(self.scores).decode(),
                "latency_ms": self.latency_ms, "error": self.error}


class Label(BaseModel):
    """The ground truth of one request, known later."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    label: str | int | float | bool = Field(description="the true class or value")
    labeled_at: datetime | None = Field(None, description="when it was known (default: when the batch was "
                                                          "accepted); the newest label of a request wins")

    _labeled_at_range = field_validator("labeled_at")(_in_range)

    @field_validator("label")
    @classmethod
    def _finite(cls, value):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"label is {value}")
        return value

    def row(self, accepted_at: datetime) -> dict:
        return {"request_id": self.request_id, "label": str(self.label),
                "labeled_at": _utc_naive(self.labeled_at or accepted_at).isoformat()}


class InferenceBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inferences: list[Inference] = Field(min_length=1, max_length=MAX_ROWS)


class LabelBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[Label] = Field(min_length=1, max_length=MAX_ROWS)


class Accepted(BaseModel):
    batch_id: str = Field(description="the batch's id in the spool and, once ingested, in ingested_batches")
    accepted: int = Field(description="rows written to the spool (duplicates inside the batch left out)")
    duplicates_in_batch: int = Field(description="rows whose request id came earlier in the same batch "
                                                 "(the first one is kept)")


def _accept(request: Request, kind: str, items: list, key) -> Accepted:
    accepted_at = datetime.now(timezone.utc).replace(tzinfo=None)
    seen, rows = set(), []
    try:
        for i, item in enumerate(items):
            if key(item) not in seen:
                seen.add(key(item))
                try:
                    rows.append(item.row(accepted_at))
                except ValueError as error:  # pydantic_core cannot encode a lone surrogate in an input
                    raise ValueError(f"{kind} row {i}: text that is not valid Unicode ({error})") from error
        batch_id = Spool(request.app.state.settings.spool).accept(kind, rows, accepted_at=accepted_at)
    except ValueError as error:  # what the body's models cannot see, e.g. text that is not valid Unicode
        raise RequestValidationError([{"type": "value_error", "loc": ["body", kind], "msg": str(error),
                                       "input": None}]) from error  # FastAPI's 422 shape, as the schema says
    except OSError as error:  # a full or unwritable disk: nothing was accepted, the client retries
        raise Unavailable(f"the spool cannot take the batch now: {error.strerror or error}", retry_after=5) from error
    drainer = getattr(request.app.state, "drainer", None)
    if drainer is not None:
        drainer.wake()
    return Accepted(batch_id=batch_id, accepted=len(rows), duplicates_in_batch=len(items) - len(rows))


@router.post("/v1/inferences", status_code=202, response_model=Accepted, dependencies=[Depends(require_write)],
             responses=responses(400, 401, 503), summary="Send a batch of predictions")
async def post_inferences(batch: InferenceBatch, request: Request) -> Accepted:
    """Up to 10,000 predictions. Answered 202 once the batch is durable in the spool; the rows reach
    ``inference_log`` soon after, exactly once (a request id already logged for the model is skipped)."""
    return await run_in_threadpool(_accept, request, "inferences", batch.inferences, lambda i: (i.model, i.request_id))


@router.post("/v1/labels", status_code=202, response_model=Accepted, dependencies=[Depends(require_write)],
             responses=responses(400, 401, 503), summary="Send a batch of late labels")
async def post_labels(batch: LabelBatch, request: Request) -> Accepted:
    """Up to 10,000 labels by request id. A label already stored for the request is skipped; a different
    one is a correction, kept beside it (the newest ``labeled_at`` is the one a window reads)."""
    return await run_in_threadpool(_accept, request, "labels", batch.labels, lambda label: label.request_id)


class Drainer:
    """The spool's drainer: a process of its own (``storage.spool.drain_forever``), so that parsing
    and inserting batches never holds this process's interpreter while it answers requests. It
    drains every ``interval`` seconds and soon after each accepted batch."""

    def __init__(self, spool, warehouse, *, interval: float = 1.0, timeout: float = 5.0):
        context = multiprocessing.get_context("spawn")  # no fork of a process running threads
        self._wake, self._stop = context.Event(), context.Event()
        self._process = context.Process(target=drain_forever, name="spool-drainer", daemon=True,
                                        args=(str(spool), str(warehouse)),
                                        kwargs=dict(timeout=timeout, interval=interval, wake=self._wake,
                                                    stop=self._stop))

    def start(self) -> Drainer:
        self._process.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the drain under way finish (each batch is one transaction), then end the process."""
        self._stop.set()
        self._wake.set()
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


def start_drainer(app) -> None:
    """The app's lifespan start: drain its spool in the background."""
    settings = app.state.settings
    app.state.drainer = Drainer(settings.spool, settings.warehouse, timeout=settings.write_timeout).start()


def stop_drainer(app) -> None:
    drainer = getattr(app.state, "drainer", None)
    if drainer is not None:
        drainer.stop()
