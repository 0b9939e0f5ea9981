"""Consistent reads over HTTP, shared by every read route: the read side of the process, and
the wait that `?consistent=true`, `x-ainfera-consistent: true` or `x-ainfera-after: N` asks
for (up to 2 s, then 503 with retry-after, never silently stale data)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request

from app.http.errors import InvalidRequestError, ServiceUnavailableError
from app.runtime import Runtime
from app.services.read_side import ProjectionBehindError, ReadSide

TRUE = frozenset({"1", "true", "yes", "on"})


def read_side_of(request: Request[Any, Any, Any]) -> ReadSide:
    runtime: Runtime = request.app.state.runtime
    return runtime.read_side


async def ensure_consistent(request: Request[Any, Any, Any], read_side: ReadSide,
                            projections: tuple[str, ...], asked: bool) -> None:
    """Waits for the projections when the caller asked for a consistent read."""
    after = request.headers.get("x-ainfera-after")
    asked = asked or request.headers.get("x-ainfera-consistent", "").strip().lower() in TRUE
    if after is None and not asked:
        return
    if after is not None:
        if not after.strip().isdigit():
            raise InvalidRequestError("x-ainfera-after must be a notification id (an integer)",
                                      param="x-ainfera-after")
        target = int(after)
    else:
        target = await asyncio.to_thread(read_side.store.max_notification_id)
    try:
        await read_side.wait_until(projections, target)
    except ProjectionBehindError as exc:
        raise ServiceUnavailableError(str(exc), code="projection_lag",
                                      headers={"retry-after": "1"}) from None
