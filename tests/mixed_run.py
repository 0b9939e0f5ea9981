"""A mixed run of inferences recorded straight through the domain aggregates and the real event
store, for the read-side tests: every outcome a projection must tell apart, two tenants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from adapters.database import Database
from adapters.store import EventStore
from app.services import tenancy
from domain.context import audit_context
from domain.ids import agent_id_for
from domain.inference import Inference
from domain.routing import DIRECT, ROUTER
from projections.registry import PROJECTIONS
from projections.view import Session

POLICY = {"min_quality": "0.70", "routing_preference": "balanced", "preference_live": False}


def candidate(model: str, quality: str, cost: str, eligible: bool, cleared: bool,
              reason: str | None, provider: str = "openai") -> dict[str, Any]:
    return {"model": model, "provider": provider, "quality": quality, "est_cost_usd": cost,
            "eligible": eligible, "cleared_floor": cleared, "rejection_reason": reason}


# As the routing brain orders them: cheapest first. The last two are not what today's brain
# writes (it always names a reason) but what the dashboard rule must still collapse right.
CANDIDATES = [
    candidate("gemini-2.5-flash", "0.65", "0.000310", False, False, "below_floor", "gemini"),
    candidate("gpt-5-mini", "0.70", "0.000520", True, True, None),
    candidate("claude-haiku-4-5", "0.62", "0.001000", False, True, "tools_unsupported",
              "anthropic"),
    candidate("gpt-5", "0.82", "0.002100", False, True, None),
    candidate("claude-sonnet-4-5", "0.80", "0.003000", True, False, None, "anthropic"),
]
REJECTED = [
    candidate("gemini-2.5-flash", "0.65", "0.000310", False, False, "below_floor", "gemini"),
    candidate("gpt-5-mini", "0.70", "0.000520", False, False, "below_floor"),
]


@dataclass
class Run:
    """Tenant A ("acme": agents default and bot, bot capped) made six calls, five of them
    through bot; tenant B ("globex") made one. `ids` names each inference by its outcome."""

    tenant_a: UUID
    tenant_b: UUID
    agent_a: UUID
    bot_a: UUID
    key_a: str
    key_b: str
    ids: dict[str, UUID] = field(default_factory=dict)


def record(store: EventStore, tenant: UUID, agent: UUID, request_id: str, *, router: str,
           requested: str, chosen: str | None, candidates: list[dict[str, Any]],
           alias_hit: str | None = None,
           attempts: Sequence[dict[str, Any] | None] = (None,),
           status: str = "succeeded", latency_ms: int | None = 100,
           cost: str | None = "0.001000", api: str = "messages") -> UUID:
    """One inference as the gateway writes it: Routed alone (write-ahead), then the rest."""
    call = route(store, tenant, agent, request_id, router=router, requested=requested,
                 chosen=chosen, candidates=candidates, alias_hit=alias_hit, api=api)
    finish(store, [call], attempts=attempts, status=status, latency_ms=latency_ms, cost=cost)
    return call.inference.id


@dataclass
class OpenCall:
    """An inference whose Routed event is recorded, with the audit ids its events carry."""

    inference: Inference
    audit: tuple[str, str, str]


def route(store: EventStore | None, tenant: UUID, agent: UUID, request_id: str, *,
          router: str, requested: str, chosen: str | None, candidates: list[dict[str, Any]],
          alias_hit: str | None = None, api: str = "messages") -> OpenCall:
    """An inference's write-ahead Routed event, saved alone (or left pending without a
    store, for a caller that saves many at once)."""
    audit = (str(tenant), str(agent), request_id)
    with audit_context(*audit):
        inference = Inference(
            api=api, requested_model=requested, router=router, alias_hit=alias_hit,
            candidates=candidates, chosen_model=chosen,
            policy=POLICY if router == ROUTER else {**POLICY, "min_quality": "0.50"},
            ruleset_hash="sha256:" + "ab" * 32, stream=True, tools=0, request_digest="d" * 64,
        )
    if store is not None:
        store.save_events(inference.collect_events())
    return OpenCall(inference, audit)


def finish(store: EventStore, calls: Sequence[OpenCall], *,
           attempts: Sequence[dict[str, Any] | None] = (None,), status: str = "succeeded",
           latency_ms: int | None = 100, cost: str | None = "0.001000") -> None:
    """The rest of each call's events (dispatch, stream, Completed, Debited), saved in one
    transaction, as the gateway saves a call that closes (or a group commit of many)."""
    events: list[Any] = []
    for call in calls:
        inference = call.inference
        with audit_context(*call.audit):
            chosen = inference.chosen_model
            for error in attempts if chosen is not None else []:
                inference.dispatch("openai", chosen or "", None if error else "up-1", error)
            if chosen is not None and status != "failed":
                inference.record_stream(40, 3, 120)
            inference.complete(status, "end_turn" if status.endswith("succeeded") else None,
                               None, latency_ms, None)
            if cost is not None:
                inference.debit(Decimal(cost), "v1", None)
        events += inference.collect_events()
    store.save_events(events)


def mixed_run(store: EventStore) -> Run:
    tenant_a = tenancy.create_tenant(store, "acme")
    tenant_b = tenancy.create_tenant(store, "globex")
    bot = tenancy.create_agent(store, "acme", "bot", Decimal("5.00"))
    tenancy.set_agent_cap(store, "acme", "bot", Decimal("7.50"))
    key_a = tenancy.create_key(store, "acme", "bot")
    key_b = tenancy.create_key(store, "globex", None)
    run = Run(tenant_a, tenant_b, agent_id_for(tenant_a, tenancy.DEFAULT_AGENT), bot,
              key_a.key, key_b.key)
    overloaded = {"type": "overloaded_error", "status": 529, "retryable": True}
    run.ids["routed"] = record(store, tenant_a, bot, "r1", router=ROUTER,
                               requested="ainfera-inference", chosen="gpt-5-mini",
                               candidates=CANDIDATES, latency_ms=120, cost="0.001200")
    run.ids["fallback"] = record(store, tenant_a, bot, "r2", router=ROUTER,
                                 requested="ainfera-auto", alias_hit="ainfera-auto",
                                 chosen="gpt-5-mini", candidates=CANDIDATES,
                                 attempts=[overloaded, None], status="fallback_succeeded",
                                 latency_ms=300, cost="0.000800", api="chat.completions")
    run.ids["rejected"] = record(store, tenant_a, bot, "r3", router=ROUTER,
                                 requested="ainfera-inference", chosen=None,
                                 candidates=REJECTED, status="rejected_floor", latency_ms=2,
                                 cost=None)
    run.ids["failed"] = record(store, tenant_a, bot, "r4", router=ROUTER,
                               requested="ainfera-inference", chosen="gpt-5-mini",
                               candidates=CANDIDATES,
                               attempts=[{"type": "api_error", "status": 500,
                                          "retryable": False}],
                               status="failed", latency_ms=50, cost="0")
    run.ids["cancelled"] = record(store, tenant_a, bot, "r5", router=ROUTER,
                                  requested="ainfera-inference", chosen="gpt-5-mini",
                                  candidates=CANDIDATES, status="cancelled", latency_ms=900,
                                  cost="0.000300")
    run.ids["direct"] = record(store, tenant_a, run.agent_a, "r6", router=DIRECT,
                               requested="claude-haiku-4-5", chosen="claude-haiku-4-5",
                               candidates=[], latency_ms=80, cost="0.000100")
    run.ids["other_tenant"] = record(store, tenant_b, key_b.agent_id, "r7", router=ROUTER,
                                     requested="ainfera-inference", chosen="gpt-5-mini",
                                     candidates=CANDIDATES, latency_ms=70, cost="0.000500")
    return run


def dump_all(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table, in key order, plus the tracking rows: the full read side."""
    conn = database.connect()
    try:
        session = Session(conn, database.kind)
        tables: dict[str, list[tuple[Any, ...]]] = {}
        for cls in PROJECTIONS:
            for table, key in cls.tables.items():
                tables[table] = session.execute(
                    f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
        tables["projection_tracking"] = session.execute(
            "SELECT * FROM projection_tracking ORDER BY projection")
        return tables
    finally:
        conn.close()
