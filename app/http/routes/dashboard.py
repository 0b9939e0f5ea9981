"""Dashboard reads over HTTP: usage per day, the caps rollup, agent metrics and an inference's
routing decision (the queries themselves are app/services/dashboard.py). Tenant-scoped by the
caller's key: another tenant's agent or inference is 404
(never 403), and an empty tenant gets zeros.

Consistency: reads are served from the projections, which trail the ledger by a few
milliseconds. With `?consistent=true` or `x-ainfera-consistent: true` a read first waits (up to
2 s) until the projections it reads have applied the ledger up to `x-ainfera-after: N` (the
notification id a write returned) or, without it, up to the ledger's current end; if they do
not get there in time it answers 503 with `retry-after`, never silently stale data.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery

from adapters.budget import BudgetError
from app.http.auth import provide_principal
from app.http.consistency import ensure_consistent, read_side_of
from app.http.errors import InvalidRequestError, NotFoundError, ServiceUnavailableError
from app.http.routes.inferences import load_owned_inference
from app.runtime import Runtime
from app.services import dashboard
from app.services.read_side import ReadSide
from app.services.tenancy import Principal, UnknownError, agent_of_tenant
from domain.ids import parse_inference_id, public_inference_id
from domain.money import usd_str
from projections.agents import tenant_agents
from projections.decisions import read_decision

CALLER = {"caller": Provide(provide_principal)}


def parse_days(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= dashboard.MAX_DAYS:
        raise InvalidRequestError(
            f"days must be a whole number from 1 to {dashboard.MAX_DAYS}, not {text!r}",
            param="days")
    return int(text)


def parse_fill(text: str | None) -> bool:
    """`fill=zero` lists every day of the window; absent, only the days that had calls."""
    if text is None:
        return False
    if text.strip().lower() != "zero":
        raise InvalidRequestError(
            f"fill must be 'zero' (every day of the window, zeros included) or absent (only "
            f"the days with calls), not {text!r}", param="fill")
    return True


@get("/v1/usage/daily", dependencies=CALLER)
async def usage_daily(request: Request[Any, Any, Any], caller: NamedDependency[Principal],
                      days: FromQuery[str] = "30", agent: FromQuery[str | None] = None,
                      by: FromQuery[str | None] = None, fill: FromQuery[str | None] = None,
                      consistent: FromQuery[bool] = False) -> dict[str, Any]:
    """`agent` (id or name) keeps one agent's calls; `by=agent` adds each day's `by_agent`
    split, `by=outcome` its `by_outcome` split (calls and spend per exact status);
    `fill=zero` lists every day of the window, not only the days with calls."""
    window = parse_days(days)
    fill_zero = parse_fill(fill)
    if by is not None and by not in dashboard.SPLITS:
        raise InvalidRequestError(
            f"by must be one of {', '.join(dashboard.SPLITS)}, not {by!r}", param="by")
    read_side = read_side_of(request)
    agent_id = None if agent is None else await owned_agent_id(read_side, caller, agent)
    projections = ("usage_daily", "agent_metrics") if by == "outcome" else ("usage_daily",)
    await ensure_consistent(request, read_side, projections, consistent)
    today = datetime.now(UTC).date()
    return await read_side.read(
        lambda s: dashboard.usage_daily(s, str(caller.tenant_id), window, today, agent_id, by,
                                        fill_zero))


async def owned_agent_id(read_side: ReadSide, caller: Principal, ref: str) -> str:
    """The id of the caller's tenant's agent named (or with id) `ref`; 404 otherwise. Read from
    the ledger itself, so a just-registered agent is never a 404."""
    try:
        agent = await asyncio.to_thread(agent_of_tenant, read_side.store, caller.tenant_id, ref)
    except UnknownError:
        raise NotFoundError(f"no agent {ref!r}") from None
    return str(agent.id)


@get("/v1/caps/rollup", dependencies=CALLER)
async def caps_rollup(request: Request[Any, Any, Any], caller: NamedDependency[Principal],
                      consistent: FromQuery[bool] = False) -> dict[str, Any]:
    read_side = read_side_of(request)
    await ensure_consistent(request, read_side,
                            ("agents", "usage_daily", "agent_metrics", "routing_outcomes"),
                            consistent)
    now = datetime.now(UTC)
    rollup = await read_side.read(lambda s: dashboard.caps_rollup(s, str(caller.tenant_id), now))
    agents = await read_side.read(lambda s: tenant_agents(s, str(caller.tenant_id)))
    capped = [agent_id for agent_id, _name, cap in agents if cap is not None]
    rollup["budget"].update(await live_spend(request, capped, now))
    return rollup


@get("/v1/agents/{agent_id:str}/metrics", dependencies=CALLER)
async def agent_metrics(request: Request[Any, Any, Any], agent_id: FromPath[str],
                        caller: NamedDependency[Principal],
                        consistent: FromQuery[bool] = False) -> dict[str, Any]:
    """`agent_id` is the agent's id or its name in the caller's tenant (as the CLI takes)."""
    read_side = read_side_of(request)
    agent = await owned_agent_id(read_side, caller, agent_id)
    await ensure_consistent(request, read_side, ("agent_metrics",), consistent)
    now = datetime.now(UTC)
    metrics = await read_side.read(
        lambda s: dashboard.agent_metrics(s, str(caller.tenant_id), agent, now))
    metrics["spend_today"] = await live_spend(request, [agent], now)
    return metrics


async def live_spend(request: Request[Any, Any, Any], agent_ids: list[str],
                     now: datetime) -> dict[str, Any]:
    """Today's spend as the cap counters see it: settled (debited) and reserved (held by
    calls in flight). The ledger-derived figures above are the truth; these are what the
    next reservation is checked against."""
    runtime: Runtime = request.app.state.runtime
    settled = reserved = Decimal(0)
    try:
        for agent_id in agent_ids:
            usage = await runtime.spend.counters.usage(agent_id, now.date())
            settled += usage.settled
            reserved += usage.reserved
    except BudgetError:
        return {"counters": "unavailable", "settled_usd": None, "reserved_usd": None}
    return {"counters": "ok", "settled_usd": usd_str(settled.normalize()),
            "reserved_usd": usd_str(reserved.normalize())}


@get("/v1/inferences/{inference_id:str}/decision", dependencies=CALLER)
async def inference_decision(request: Request[Any, Any, Any], inference_id: FromPath[str],
                             caller: NamedDependency[Principal],
                             consistent: FromQuery[bool] = False) -> dict[str, Any]:
    """A passthrough answers too: router "direct", no candidates, the pinned model chosen."""
    read_side = read_side_of(request)
    try:
        uid = parse_inference_id(inference_id)
    except ValueError:
        raise NotFoundError(f"no inference {inference_id!r}") from None
    tenant = str(caller.tenant_id)
    await ensure_consistent(request, read_side, ("decisions",), consistent)
    decision = await read_side.read(lambda s: read_decision(s, tenant, str(uid)))
    if decision is None:
        # Unknown, another tenant's (both 404), or recorded but not yet projected: wait for it.
        await asyncio.to_thread(load_owned_inference, read_side.store, inference_id, caller)
        await ensure_consistent(request, read_side, ("decisions",), True)
        decision = await read_side.read(lambda s: read_decision(s, tenant, str(uid)))
        if decision is None:
            raise ServiceUnavailableError("the decision is not projected yet; retry shortly",
                                          code="projection_lag", headers={"retry-after": "1"})
    return {"id": public_inference_id(uid, decision["api"]), "object": "inference.decision",
            **decision}
