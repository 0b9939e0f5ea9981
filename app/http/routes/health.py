"""Liveness and readiness: `/healthz` says the process is up (and nothing else: a load
balancer must not restart a gateway because PostgreSQL is down); `/readyz` says whether a call
would succeed now, and names what is failing when not (app.services.readiness)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from app.runtime import Runtime
from app.services.readiness import is_ready


@get("/healthz", sync_to_thread=False, include_in_schema=True)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    runtime: Runtime = request.app.state.runtime
    checks = await runtime.readiness()
    ready = is_ready(checks)
    failing = [name for name, value in checks.items() if not value.startswith("ok")]
    return Response(
        {"status": "ready" if ready else "unavailable", "checks": checks, "failing": failing,
         "instance": runtime.instance_id},
        status_code=200 if ready else 503,
        headers={} if ready else {"retry-after": "1"},
    )
