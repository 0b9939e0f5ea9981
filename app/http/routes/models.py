"""`GET /v1/models`: what a key may call, in the SDK's own list shape (Anthropic when the
request carries `anthropic-version`, OpenAI otherwise). The router name comes first; legacy
aliases are accepted but never advertised."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency, Provide

from app.http.auth import provide_principal
from app.runtime import Runtime
from app.services.tenancy import Principal

_EPOCH = "2025-01-01T00:00:00Z"


@get("/v1/models", dependencies={"caller": Provide(provide_principal)})
async def list_models(request: Request[Any, Any, Any],
                      caller: NamedDependency[Principal]) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    catalog = runtime.catalog
    ids = [catalog.router.canonical] + [
        m.slug for m in catalog.models if m.provider in runtime.providers
    ]
    if "anthropic-version" in request.headers:
        data = [{"type": "model", "id": i, "display_name": i, "created_at": _EPOCH} for i in ids]
        return {"data": data, "has_more": False, "first_id": ids[0], "last_id": ids[-1]}
    owners = {m.slug: m.provider for m in catalog.models}
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 1735689600,
                  "owned_by": owners.get(i, "ainfera")} for i in ids],
    }
