"""API-key auth for the gateway: `x-api-key: K` or `Authorization: Bearer K`, resolved to a
tenant and agent. An unknown, malformed or revoked key is 401 in the caller's protocol shape."""

from __future__ import annotations

from typing import Any

from litestar import Request

from app.http.errors import AuthenticationError
from app.runtime import Runtime
from app.services.tenancy import Caller


def presented_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    """Litestar dependency: the authenticated caller, or a 401."""
    key = presented_key(request)
    if key is None:
        raise AuthenticationError(
            "missing API key: send it as 'x-api-key: KEY' or 'Authorization: Bearer KEY'"
        )
    runtime: Runtime = request.app.state.runtime
    caller = await runtime.authenticate(key)
    if caller is None:
        raise AuthenticationError("invalid or revoked API key")
    request.state.caller = caller
    return caller
