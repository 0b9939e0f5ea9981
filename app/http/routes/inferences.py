"""Reading inferences back: the tenant's list (`GET /v1/inferences`, from the read models) and
one inference's events (from the ledger), for its own tenant only (another tenant's id is 404,
never 403, so ids leak nothing). An agent key lists only its own agent's inferences."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from uuid import UUID

from litestar import Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery

from adapters.store import AggregateMissingError, EventStore, payload_of
from app.http.auth import provide_principal
from app.http.consistency import ensure_consistent, read_side_of
from app.http.errors import InvalidRequestError, NotFoundError
from app.runtime import Runtime
from app.services import inference_reads
from app.services.tenancy import Principal, UnknownError, agent_of_tenant
from domain.ids import parse_inference_id, public_inference_id
from domain.inference import Inference
from projections.inference_list import InferenceFilter
from projections.ledger_event import json_value
from projections.view import utc_text

LIST_PROJECTIONS = ("agent_metrics", "decisions", "agents")


def event_view(event: Any) -> dict[str, Any]:
    """An event as JSON, converted the way the ledger converts it for receipts: `recorded_at`
    in the receipt's own form (fixed-width UTC with `Z`), so one event reads the same here and
    in its receipt, where that text is covered by the leaf hash and can never change."""
    view: dict[str, Any] = {
        "type": type(event).__name__,
        "version": event.originator_version,
        "recorded_at": utc_text(event.timestamp),
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


@get("/v1/inferences", dependencies={"caller": Provide(provide_principal)})
async def list_inferences(
    request: Request[Any, Any, Any], caller: NamedDependency[Principal],
    agent: FromQuery[str | None] = None, status: FromQuery[str | None] = None,
    model: FromQuery[str | None] = None, router: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None, until: FromQuery[str | None] = None,
    limit: FromQuery[str | None] = None, cursor: FromQuery[str | None] = None,
    consistent: FromQuery[bool] = False,
) -> dict[str, Any]:
    """The caller's inferences, newest first: `{object: "list", data, has_more, next_cursor}`.
    Filters: agent (id or name), status (comma-separated; `in_flight` for open calls), model
    (requested or chosen), router, since (inclusive) and until (exclusive) on the Routed time;
    `limit` 1..200 (50); `cursor` from the previous page."""
    runtime: Runtime = request.app.state.runtime
    read_side = read_side_of(request)
    try:
        where = InferenceFilter(
            tenant_id=str(caller.tenant_id), statuses=inference_reads.parse_statuses(status),
            model=model or None, router=inference_reads.parse_router(router),
            since=inference_reads.parse_moment(since, "since"),
            until=inference_reads.parse_moment(until, "until"),
        )
        size = inference_reads.parse_limit(limit)
        if cursor:
            inference_reads.decode_cursor(cursor)
    except inference_reads.BadQueryError as exc:
        raise InvalidRequestError(str(exc), param=exc.param) from None
    where = replace(where, agent_id=await _listed_agent(runtime, caller, agent))
    await ensure_consistent(request, read_side, LIST_PROJECTIONS, consistent)
    return await read_side.read(lambda s: inference_reads.page(s, where, size, cursor))


async def _listed_agent(runtime: Runtime, caller: Principal, ref: str | None) -> str | None:
    """An agent key sees its own agent only (another agent is 404, as if it did not exist);
    an admin key any agent of its tenant, or all of them."""
    if caller.agent_id is not None:
        if ref is not None and ref != str(caller.agent_id):
            try:
                named = await asyncio.to_thread(agent_of_tenant, runtime.store, caller.tenant_id,
                                                ref)
            except UnknownError:
                named = None
            if named is None or named.id != caller.agent_id:
                raise NotFoundError(f"no agent {ref!r}")
        return str(caller.agent_id)
    if ref is None:
        return None
    try:
        agent = await asyncio.to_thread(agent_of_tenant, runtime.store, caller.tenant_id, ref)
    except UnknownError:
        raise NotFoundError(f"no agent {ref!r}") from None
    return str(agent.id)
