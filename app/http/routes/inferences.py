"""Reading an inference back: its events, for its own tenant only (another tenant's id is 404,
never 403, so ids leak nothing)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar import Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from adapters.store import AggregateMissingError, EventStore, payload_of
from app.http.auth import provide_principal
from app.http.errors import NotFoundError
from app.runtime import Runtime
from app.services.tenancy import Principal
from domain.ids import parse_inference_id, public_inference_id
from domain.inference import Inference
from projections.ledger_event import json_value


def event_view(event: Any) -> dict[str, Any]:
    """An event as JSON, converted the way the ledger converts it for receipts."""
    view: dict[str, Any] = {
        "type": type(event).__name__,
        "version": event.originator_version,
        "recorded_at": event.timestamp.isoformat(),
    }
    for key, value in payload_of(event).items():
        view[key] = json_value(value, f"{view['type']}.{key}")
    return view


def load_owned_inference(
    store: EventStore, public_id: str, caller: Principal
) -> tuple[UUID, list[Any]]:
    """The inference's events if it belongs to the caller's tenant; NotFound otherwise."""
    try:
        inference_id = parse_inference_id(public_id)
    except ValueError:
        raise NotFoundError(f"no inference {public_id!r}") from None
    try:
        store.get(inference_id, Inference)
    except AggregateMissingError:
        raise NotFoundError(f"no inference {public_id!r}") from None
    events = store.events_of(inference_id)
    if not events or events[0].tenant_id != str(caller.tenant_id):  # type: ignore[attr-defined]
        raise NotFoundError(f"no inference {public_id!r}")
    return inference_id, events


@get("/v1/inferences/{inference_id:str}", dependencies={"caller": Provide(provide_principal)})
async def get_inference(request: Request[Any, Any, Any], inference_id: FromPath[str],
                        caller: NamedDependency[Principal]) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    uid, events = await asyncio.to_thread(load_owned_inference, runtime.store, inference_id, caller)
    api = events[0].api
    return {
        "id": public_inference_id(uid, api),
        "object": "inference",
        "events": [event_view(e) for e in events],
    }
