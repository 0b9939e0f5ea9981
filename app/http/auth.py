"""API-key auth for the gateway: `x-api-key: K` or `Authorization: Bearer K`, resolved to whom
the key speaks for. An unknown, malformed or revoked key is 401 in the caller's protocol shape.

Three dependencies, one per kind of route, so a route cannot forget the scope check:
`provide_caller` (inference calls: agent keys only; an admin key is 403), `provide_principal`
(reads: either scope) and `provide_admin` (the admin API: admin keys only; an agent key is 403,
so no agent can lift its own cap).
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from app.http.errors import AuthenticationError, PermissionDeniedError
from app.runtime import Runtime
from app.services.tenancy import Caller, Principal


def presented_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Litestar dependency: whoever a valid key speaks for (agent or admin), or a 401."""
    key = presented_key(request)
    if key is None:
        raise AuthenticationError(
            "missing API key: send it as 'x-api-key: KEY' or 'Authorization: Bearer KEY'"
        )
    runtime: Runtime = request.app.state.runtime
    principal = await runtime.authenticate(key)
    if principal is None:
        raise AuthenticationError("invalid or revoked API key")
    request.state.caller = principal
    return principal


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    """Litestar dependency: an agent key's caller; an admin key is 403 (it makes no calls)."""
    caller = (await provide_principal(request)).as_caller()
    if caller is None:
        raise PermissionDeniedError(
            "this is a tenant-admin key: it manages agents, caps and keys but cannot make "
            "inference calls; use an agent key")
    return caller


async def provide_admin(request: Request[Any, Any, Any]) -> Principal:
    """Litestar dependency: a tenant-admin key; an agent key is 403."""
    principal = await provide_principal(request)
    if not principal.is_admin:
        raise PermissionDeniedError(
            "this endpoint needs a tenant-admin key (ainfera key create --tenant T --admin); "
            "an agent key cannot manage agents, caps or keys")
    return principal
