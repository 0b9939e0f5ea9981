"""The admin API's reads for one tenant: its agents with caps, today's spend and 24-hour
metrics; its keys (never a secret, only the hint); and the audit trail of tenancy changes.

Pure functions of a read snapshot and `now`, like the dashboard's. Keys and the audit trail are
folded from the ledger's own leaves (projections.tenancy_log), so what the admin API shows is
exactly what is on the hash chain, each change with its leaf index.

One concept at two layers: these are the admin API's queries; `app/http/routes/admin.py` is the
API itself (routes, scope checks, the writes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.services.dashboard import WINDOW
from domain.money import from_nanos, usd_str
from projections.agent_metrics import window_rows, window_stats
from projections.agents import tenant_agent_rows
from projections.tenancy_log import TenancyLeaf, key_leaves, tenancy_leaves
from projections.usage_daily import read_days
from projections.view import Session, utc_text

OPERATOR = {"kind": "operator"}
"""Who made a change with no admin key: the operator, with the `ainfera` CLI."""


def agents_overview(session: Session, tenant_id: str, now: datetime) -> list[dict[str, Any]]:
    """Every agent of the tenant, oldest first, with its cap, what it spent today (UTC, from
    the Debited events) and its 24-hour metrics, and how many of its keys are active."""
    today = now.date().isoformat()
    spent: dict[str, tuple[int, Decimal]] = {
        str(agent): (int(calls), from_nanos(int(cost)))
        for _day, agent, calls, cost, *_ in read_days(session, tenant_id, today, today)}
    window: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for row in window_rows(session, tenant_id, utc_text(now - WINDOW), utc_text(now)):
        window[str(row[0])].append(row)
    active: dict[str, int] = defaultdict(int)
    for key in fold_keys(key_leaves(session, tenant_id)):
        if not key["revoked"] and key["agent_id"] is not None:
            active[key["agent_id"]] += 1
    out = []
    for agent_id, name, cap, registered_at, policy_updated_at in tenant_agent_rows(
            session, tenant_id):
        calls_today, spend_today = spent.get(str(agent_id), (0, Decimal(0)))
        out.append({
            "id": str(agent_id),
            "object": "agent",
            "name": name,
            "daily_cap_usd": None if cap is None else usd_str(Decimal(cap)),
            "spend_today_usd": usd_str(spend_today),
            "calls_today": calls_today,
            "registered_at": registered_at,
            "policy_updated_at": policy_updated_at,
            "active_keys": active.get(str(agent_id), 0),
            "metrics_24h": window_stats(window.get(str(agent_id), [])).as_dict(),
        })
    return out


def keys(session: Session, tenant_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
    """The tenant's keys (or one agent's), newest first."""
    folded = fold_keys(key_leaves(session, tenant_id))
    if agent_id is not None:
        folded = [k for k in folded if k["agent_id"] == agent_id]
    return sorted(folded, key=lambda k: k["leaf_index"], reverse=True)


def fold_keys(leaves: Sequence[TenancyLeaf]) -> list[dict[str, Any]]:
    """KeyIssued and KeyRevoked leaves (oldest first) folded into one row per key."""
    rows: dict[str, dict[str, Any]] = {}
    for leaf in leaves:
        event = leaf.event
        key_id = str(event.get("aggregate_id"))
        if event.get("type") == "KeyIssued":
            rows[key_id] = {
                "id": key_id,
                "object": "api_key",
                "hint": event.get("hint"),
                # Keys issued before scopes existed have none: they were all agent keys.
                "scope": event.get("scope", "agent"),
                "agent_id": event.get("bound_agent_id"),
                "created_at": event.get("recorded_at"),
                "created_by": actor(event),
                "revoked": False,
                "revoked_at": None,
                "revoked_by": None,
                "leaf_index": leaf.leaf_index,
            }
        elif event.get("type") == "KeyRevoked" and key_id in rows:
            rows[key_id].update(revoked=True, revoked_at=event.get("recorded_at"),
                                revoked_by=actor(event))
    return list(rows.values())


def audit(session: Session, tenant_id: str, limit: int,
          before: int | None = None) -> dict[str, Any]:
    """The tenant's tenancy changes, newest first, each with the event the ledger hashes."""
    leaves = tenancy_leaves(session, tenant_id, limit=limit + 1, before=before)
    more = len(leaves) > limit
    leaves = leaves[:limit]
    names = {str(agent_id): str(name) for agent_id, name, *_ in
             tenant_agent_rows(session, tenant_id)}
    hints = {k["id"]: k["hint"] for k in fold_keys(key_leaves(session, tenant_id))}
    return {
        "object": "list",
        "data": [{
            "leaf_index": leaf.leaf_index,
            "type": leaf.event.get("type"),
            "recorded_at": leaf.event.get("recorded_at"),
            "request_id": leaf.event.get("request_id"),
            "agent_id": leaf.event.get("agent_id"),
            "by": actor(leaf.event, hints),
            "summary": summary(leaf.event, names, hints),
            "event": leaf.event,
        } for leaf in leaves],
        "has_more": more,
        "next_before": leaves[-1].leaf_index if more and leaves else None,
    }


def actor(event: dict[str, Any], hints: dict[str, Any] | None = None) -> dict[str, Any]:
    admin_key_id = event.get("admin_key_id")
    if admin_key_id is None:
        return dict(OPERATOR)
    out: dict[str, Any] = {"kind": "admin_key", "key_id": admin_key_id}
    if hints is not None:
        out["hint"] = hints.get(admin_key_id)
    return out


def summary(event: dict[str, Any], names: dict[str, str], hints: dict[str, Any]) -> str:
    """One line a person reads in the audit trail."""
    kind = event.get("type")
    agent = names.get(str(event.get("agent_id")), str(event.get("agent_id")))
    if kind == "TenantCreated":
        return f"created the tenant {event.get('name')!r}"
    if kind == "AgentRegistered":
        cap = event.get("daily_cap_usd")
        return (f"registered agent {event.get('name')!r} "
                + ("with no daily cap" if cap is None else f"with a daily cap of ${cap}"))
    if kind == "SpendPolicySet":
        cap = event.get("daily_cap_usd")
        return (f"lifted the daily cap of agent {agent!r}" if cap is None
                else f"set the daily cap of agent {agent!r} to ${cap}")
    if kind == "KeyIssued":
        if event.get("scope") == "admin":
            return f"issued tenant-admin key {event.get('hint')}…"
        return f"issued key {event.get('hint')}… for agent {agent!r}"
    if kind == "KeyRevoked":
        return f"revoked key {hints.get(str(event.get('aggregate_id')), '?')}…"
    return str(kind)
