"""Tenants, agents and API keys as aggregates, so policy and access changes are on the ledger.

Keys are stored only as their SHA-256 hash; the clear key exists once, when it is issued.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.events import AuditedEvent
from domain.ids import agent_id_for, key_id_for, tenant_id_for
from domain.money import parse_usd


class Tenant(Aggregate):
    class Event(AuditedEvent):
        pass

    @staticmethod
    def create_id(name: str) -> UUID:
        return tenant_id_for(name)

    @event("TenantCreated")
    def __init__(self, name: str) -> None:
        check_name(name)
        self.name = name


class Agent(Aggregate):
    class Event(AuditedEvent):
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
    class Event(AuditedEvent):
        pass

    @staticmethod
    def create_id(key_hash: str, **_: Any) -> UUID:
        return key_id_for(key_hash)

    @event("KeyIssued")
    def __init__(
        self, key_hash: str, owner_tenant_id: UUID, bound_agent_id: UUID, hint: str
    ) -> None:
        self.key_hash = key_hash
        self.owner_tenant_id = owner_tenant_id
        self.bound_agent_id = bound_agent_id
        self.hint = hint
        self.revoked = False

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
