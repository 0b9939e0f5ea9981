"""Liveness and readiness: `/healthz` says the process is up, `/readyz` that it can serve
(store reachable and, when configured, Redis)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from app.runtime import Runtime


@get("/healthz", sync_to_thread=False, include_in_schema=True)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    runtime: Runtime = request.app.state.runtime
    checks = await runtime.readiness()
    ready = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
