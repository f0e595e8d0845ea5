"""Error bodies and the exceptions the routes raise: every 4xx and 503 is ``{"detail": "<sentence>"}``
(validation errors keep FastAPI's list, each naming the field), never a 500 for bad input."""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from monitoring_pipeline.storage import WarehouseError


class ErrorBody(BaseModel):
    detail: str


class Unavailable(Exception):
    """The warehouse cannot answer now (a run holds it past the deadline, no snapshot yet): 503."""

    def __init__(self, detail: str, retry_after: int = 1):
        self.detail, self.retry_after = detail, retry_after
        super().__init__(detail)


def responses(*codes: int) -> dict:
    """OpenAPI ``responses`` for a route's error codes (so the schema states every answer)."""
    return {code: {"model": ErrorBody} for code in codes}


def _json_safe(value):
    """A validation error's echoed input with NaN and infinity as text (JSON has no such numbers) and
    text that is not valid Unicode (a lone surrogate) escaped, so that the answer can be encoded."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        # FastAPI's own 422 body, except that a NaN, an infinity or a lone surrogate sent (Python's JSON
        # reads them) cannot make the answer itself unencodable (a 500)
        return JSONResponse({"detail": _json_safe(jsonable_encoder(error.errors()))}, status_code=422)

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, error: Unavailable):
        return JSONResponse({"detail": error.detail}, status_code=503,
                            headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(WarehouseError)
    async def _warehouse(request: Request, error: WarehouseError):
        return JSONResponse({"detail": f"the warehouse cannot answer now: {error.cause}"}, status_code=503,
                            headers={"Retry-After": "1"})
