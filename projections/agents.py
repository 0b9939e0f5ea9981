"""agents: every registered agent with its tenant and its spend policy (daily cap), from
AgentRegistered and SpendPolicySet, for the caps rollup. A null cap means no cap."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking

from domain.money import usd_str
from projections.events import AgentRegistered, SpendPolicySet
from projections.view import Session, SqlProjection, utc_text

INSERT = (
    "INSERT INTO agents (agent_id, tenant_id, name, daily_cap_usd, registered_at, "
    "policy_updated_at) VALUES (%s, %s, %s, %s, %s, %s)"
)
SET_POLICY = "UPDATE agents SET daily_cap_usd = %s, policy_updated_at = %s WHERE agent_id = %s"
READ_TENANT_DETAIL = (
    "SELECT agent_id, name, daily_cap_usd, registered_at, policy_updated_at FROM agents "
    "WHERE tenant_id = %s ORDER BY registered_at, agent_id"
)
READ_TENANT = (
    "SELECT agent_id, name, daily_cap_usd FROM agents WHERE tenant_id = %s ORDER BY agent_id"
)


class Agents(SqlProjection):
    name = "agents"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"agents": ("agent_id",)}

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        with self.view.transaction() as tx:
            match domain_event:
                case AgentRegistered():
                    at = utc_text(domain_event.timestamp)
                    tx.execute(INSERT, (
                        str(domain_event.originator_id), str(domain_event.owner_tenant_id),
                        domain_event.name, cap_text(domain_event.daily_cap_usd), at, at,
                    ))
                case SpendPolicySet():
                    tx.execute(SET_POLICY, (
                        cap_text(domain_event.daily_cap_usd), utc_text(domain_event.timestamp),
                        str(domain_event.originator_id),
                    ))
                case _:
                    pass
            self.view.track(tracking)


def cap_text(cap: Decimal | str | None) -> str | None:
    if cap is None:
        return None
    return usd_str(cap if isinstance(cap, Decimal) else Decimal(cap))


def tenant_agents(session: Session, tenant_id: str) -> list[tuple[str, str, Decimal | None]]:
    """(agent_id, name, daily cap or None) of every agent of a tenant."""
    return [
        (str(agent_id), str(name), None if cap is None else Decimal(cap))
        for agent_id, name, cap in session.execute(READ_TENANT, (tenant_id,))
    ]


def tenant_agent_rows(session: Session, tenant_id: str) -> list[tuple[Any, ...]]:
    """(agent_id, name, daily cap text or None, registered_at, policy_updated_at) of every
    agent of a tenant, oldest first."""
    return session.execute(READ_TENANT_DETAIL, (tenant_id,))
