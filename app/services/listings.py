"""Finding things again: every tenant, a tenant's agents and a tenant's keys, straight from the
ledger (the store's own sequence, filtered by event topic in SQL), so a listing is right the
moment a command returns, whether or not any projection has run.

A key is listed by its id and its prefix (`ak_` and four characters), never its secret, which
exists only once, when `ainfera key create` prints it. Times are UTC with `Z`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Final

from eventsourcing.utils import get_topic

from adapters.store import EventStore
from app.services.tenancy import resolve_tenant
from domain.money import usd_str
from domain.tenancy import Agent, ApiKey, Tenant
from projections.view import utc_text

_PAGE = 1000


def _event_class(aggregate: type[Any], name: str) -> type[Any]:
    """The library makes event classes from `@event` at class creation (so the type checker
    cannot see them); a renamed event fails at import rather than listing nothing."""
    cls = vars(aggregate).get(name)
    if not isinstance(cls, type):
        raise ImportError(f"{aggregate.__name__} has no event class {name!r}")
    return cls


TenantCreated: Final = _event_class(Tenant, "TenantCreated")
AgentRegistered: Final = _event_class(Agent, "AgentRegistered")
SpendPolicySet: Final = _event_class(Agent, "SpendPolicySet")
KeyIssued: Final = _event_class(ApiKey, "KeyIssued")
KeyRevoked: Final = _event_class(ApiKey, "KeyRevoked")


def _events(store: EventStore, *kinds: type[Any]) -> Iterator[Any]:
    topics = [get_topic(kind) for kind in kinds]
    start = 1
    while page := store.notifications(start, _PAGE, topics):
        for notification in page:
            yield store.decode(notification)
        start = page[-1].id + 1


def list_tenants(store: EventStore) -> list[dict[str, Any]]:
    return [{"tenant_id": str(e.originator_id), "name": e.name,
             "created_at": utc_text(e.timestamp)}
            for e in _events(store, TenantCreated)]


def list_agents(store: EventStore, tenant_ref: str) -> list[dict[str, Any]]:
    """The tenant's agents in registration order, each with its cap in force now."""
    tenant = resolve_tenant(store, tenant_ref)
    agents: dict[str, dict[str, Any]] = {}
    for event in _events(store, AgentRegistered, SpendPolicySet):
        agent_id = str(event.originator_id)
        if isinstance(event, AgentRegistered):
            if event.owner_tenant_id != tenant.id:
                continue
            agents[agent_id] = {"agent_id": agent_id, "name": event.name,
                                "daily_cap_usd": _cap(event.daily_cap_usd),
                                "created_at": utc_text(event.timestamp)}
        elif agent_id in agents:
            agents[agent_id]["daily_cap_usd"] = _cap(event.daily_cap_usd)
    return list(agents.values())


def list_keys(store: EventStore, tenant_ref: str) -> list[dict[str, Any]]:
    """The tenant's keys in issue order: id, prefix, scope, agent (none for a tenant-admin key),
    created, revoked (never the key)."""
    tenant = resolve_tenant(store, tenant_ref)
    names = {a["agent_id"]: a["name"] for a in list_agents(store, str(tenant.id))}
    keys: dict[str, dict[str, Any]] = {}
    for event in _events(store, KeyIssued, KeyRevoked):
        key_id = str(event.originator_id)
        if isinstance(event, KeyIssued):
            if event.owner_tenant_id != tenant.id:
                continue
            bound = getattr(event, "bound_agent_id", None)
            agent_id = None if bound is None else str(bound)
            keys[key_id] = {"key_id": key_id, "prefix": event.hint,
                            # KeyIssued stored before scopes existed were all agent keys.
                            "scope": getattr(event, "scope", None) or "agent",
                            "agent_id": agent_id,
                            "agent": None if agent_id is None else names.get(agent_id),
                            "created_at": utc_text(event.timestamp),
                            "revoked": False, "revoked_at": None}
        elif key_id in keys:
            keys[key_id].update(revoked=True, revoked_at=utc_text(event.timestamp))
    return list(keys.values())


def _cap(cap: Any) -> str | None:
    return None if cap is None else usd_str(Decimal(cap))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as aligned text columns for a terminal (`-` for a missing value)."""
    cells = [[str(c).upper() for c in columns]]
    cells += [["-" if row.get(c) is None else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in cells)
