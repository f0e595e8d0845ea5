"""Bearer-token checks: writes always need $MONITORING_API_TOKEN; reads need it only when the
server is bound to an address other machines reach. The token is compared in constant time
and never logged or echoed."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="MONITORING_API_TOKEN, as `Authorization: Bearer <token>`")


def _check(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    token = request.app.state.settings.token
    if token is None:
        raise HTTPException(401, "this server takes no writes: start it with MONITORING_API_TOKEN set",
                            headers={"WWW-Authenticate": "Bearer"})
    if credentials is None:
        raise HTTPException(401, "missing bearer token (Authorization: Bearer <MONITORING_API_TOKEN>)",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise HTTPException(401, "wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def require_write(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    _check(request, credentials)


def require_read(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    if not request.app.state.settings.reads_open:
        _check(request, credentials)
