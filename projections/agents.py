"""agents: every registered agent with its tenant and its spend policy (daily cap, in whole
nano-dollars rounded down as the counters enforce it: domain.money), from AgentRegistered and
SpendPolicySet, for the caps rollup. A null cap means no cap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from domain.money import from_nanos, to_nanos
from projections.events import AgentRegistered, SpendPolicySet
from projections.fold import KeyedRows, ReadModel, Sequenced
from projections.view import Session

TABLE = "agents"
COLUMNS = ("agent_id", "tenant_id", "name", "daily_cap_nano_usd", "registered_at",
           "policy_updated_at")
READ_TENANT_DETAIL = (
    "SELECT agent_id, name, daily_cap_nano_usd, registered_at, policy_updated_at FROM agents "
    "WHERE tenant_id = %s ORDER BY registered_at, agent_id"
)
READ_TENANT = (
    "SELECT agent_id, name, daily_cap_nano_usd FROM agents WHERE tenant_id = %s "
    "ORDER BY agent_id"
)


def fold(batch: Sequence[Sequenced]) -> KeyedRows:
    rows = KeyedRows(TABLE, "agent_id", COLUMNS)
    for item in batch:
        event = item.event
        match event:
            case AgentRegistered():
                at = item.recorded_at
                rows.create(item.key, tenant_id=str(event.owner_tenant_id),
                            name=event.name, daily_cap_nano_usd=cap_nanos(event.daily_cap_usd),
                            registered_at=at, policy_updated_at=at)
            case SpendPolicySet():
                rows.set(item.key,
                         daily_cap_nano_usd=cap_nanos(event.daily_cap_usd),
                         policy_updated_at=item.recorded_at)
            case _:
                pass
    return rows


class Agents(ReadModel):
    name = "agents"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {TABLE: ("agent_id",)}

    def apply(self, session: Session, batch: Sequence[Sequenced]) -> None:
        fold(batch).write(session)


def cap_nanos(cap: Decimal | str | None) -> int | None:
    return None if cap is None else to_nanos(cap, "down")


def tenant_agents(session: Session, tenant_id: str) -> list[tuple[str, str, Decimal | None]]:
    """(agent_id, name, daily cap or None) of every agent of a tenant."""
    return [
        (str(agent_id), str(name), None if cap is None else from_nanos(int(cap)))
        for agent_id, name, cap in session.execute(READ_TENANT, (tenant_id,))
    ]


def tenant_agent_rows(session: Session, tenant_id: str) -> list[tuple[Any, ...]]:
    """(agent_id, name, daily cap (Decimal) or None, registered_at, policy_updated_at) of
    every agent of a tenant, oldest first."""
    return [(agent_id, name, None if cap is None else from_nanos(int(cap)), registered,
             updated) for agent_id, name, cap, registered, updated in session.execute(
                 READ_TENANT_DETAIL, (tenant_id,))]
