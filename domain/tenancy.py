"""Tenants, agents and API keys as aggregates, so policy and access changes are on the ledger.

Keys are stored only as their SHA-256 hash; the clear key exists once, when it is issued.

A key has a scope. An `agent` key (every key issued before scopes existed) speaks for one agent:
it makes inference calls and reads. An `admin` key speaks for its tenant and for no agent: it
manages the tenant's agents, caps and agent keys and reads everything of the tenant, but cannot
make inference calls, so no agent's credential can ever lift its own cap.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.events import TenancyEvent
from domain.ids import agent_id_for, key_id_for, tenant_id_for
from domain.money import parse_usd

AGENT_SCOPE: Final = "agent"
ADMIN_SCOPE: Final = "admin"
SCOPES: Final = (AGENT_SCOPE, ADMIN_SCOPE)


class Tenant(Aggregate):
    class Event(TenancyEvent):
        pass

    @staticmethod
    def create_id(name: str) -> UUID:
        return tenant_id_for(name)

    @event("TenantCreated")
    def __init__(self, name: str) -> None:
        check_name(name)
        self.name = name


class Agent(Aggregate):
    class Event(TenancyEvent):
        pass

    # Declared, as Inference's are, because projections match on them (topics unchanged).
    class AgentRegistered(Event, Aggregate.Created):
        owner_tenant_id: UUID
        name: str
        daily_cap_usd: Decimal | None

    class SpendPolicySet(Event):
        daily_cap_usd: Decimal | None

    @staticmethod
    def create_id(owner_tenant_id: UUID, name: str, **_: Any) -> UUID:
        return agent_id_for(owner_tenant_id, name)

    @event(AgentRegistered)
    def __init__(self, owner_tenant_id: UUID, name: str, daily_cap_usd: Decimal | None) -> None:
        check_name(name)
        check_cap(daily_cap_usd)
        self.owner_tenant_id = owner_tenant_id
        self.name = name
        self.daily_cap_usd = daily_cap_usd

    def set_spend_policy(self, daily_cap_usd: Decimal | None) -> None:
        check_cap(daily_cap_usd)
        self._set_spend_policy(daily_cap_usd)

    @event(SpendPolicySet)
    def _set_spend_policy(self, daily_cap_usd: Decimal | None) -> None:
        self.daily_cap_usd = daily_cap_usd


class ApiKey(Aggregate):
    class Event(TenancyEvent):
        pass

    @staticmethod
    def create_id(key_hash: str, **_: Any) -> UUID:
        return key_id_for(key_hash)

    @event("KeyIssued")
    def __init__(
        self, key_hash: str, owner_tenant_id: UUID, bound_agent_id: UUID | None, hint: str,
        scope: str = AGENT_SCOPE,
    ) -> None:
        # `scope` defaults to agent because KeyIssued events stored before scopes existed have
        # none: they were all agent keys, and must load as such.
        check_scope(scope, bound_agent_id)
        self.key_hash = key_hash
        self.owner_tenant_id = owner_tenant_id
        self.bound_agent_id = bound_agent_id
        self.hint = hint
        self.scope = scope
        self.revoked = False

    @property
    def is_admin(self) -> bool:
        return self.scope == ADMIN_SCOPE

    def revoke(self) -> None:
        if self.revoked:
            raise KeyAlreadyRevokedError(f"key {self.id} is already revoked")
        self._revoke()

    @event("KeyRevoked")
    def _revoke(self) -> None:
        self.revoked = True


def check_name(name: str) -> None:
    if not name or len(name) > 128 or not name.isprintable() or name.strip() != name:
        raise InvalidNameError(
            f"invalid name {name!r}: 1-128 printable characters, no surrounding spaces"
        )


def check_scope(scope: str, bound_agent_id: UUID | None) -> None:
    """An agent key is bound to exactly one agent; an admin key to none (it acts for the tenant,
    so it can never be mistaken for an agent's credential)."""
    if scope not in SCOPES:
        raise InvalidScopeError(f"key scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if (scope == AGENT_SCOPE) != (bound_agent_id is not None):
        raise InvalidScopeError(
            "an agent key is bound to one agent and an admin key to none"
        )


def check_cap(daily_cap_usd: Decimal | None) -> None:
    if daily_cap_usd is not None and (not daily_cap_usd.is_finite() or daily_cap_usd < 0):
        raise InvalidSpendPolicyError(
            f"daily cap must be a non-negative amount, not {daily_cap_usd}"
        )


def parse_cap(text: str | None) -> Decimal | None:
    """Parses a cap given on the command line or in JSON; None means no cap."""
    if text is None:
        return None
    cap = parse_usd(text)
    check_cap(cap)
    return cap


class TenancyError(Exception):
    """Base of the tenancy rules' errors."""


class InvalidNameError(TenancyError):
    pass


class InvalidSpendPolicyError(TenancyError):
    pass


class KeyAlreadyRevokedError(TenancyError):
    pass


class InvalidScopeError(TenancyError):
    pass
