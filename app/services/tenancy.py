"""Tenancy services: create tenants, agents and keys; resolve names; authenticate keys (the use
cases over the aggregates of domain/tenancy.py, the same concept one layer out).

Thin application services in the eventsourcing style: load, call a domain method, save, return
ids. Every event they record carries an audit context (the admin's request id).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from adapters.store import AggregateMissingError, EventStore, StoreConflictError
from domain.context import audit_context
from domain.ids import (
    KEY_PREFIX,
    agent_id_for,
    hash_api_key,
    key_id_for,
    new_api_key,
    tenant_id_for,
)
from domain.tenancy import Agent, ApiKey, Tenant

DEFAULT_AGENT = "default"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an API key speaks for."""

    tenant_id: UUID
    agent_id: UUID
    key_id: UUID


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str
    key_id: UUID
    tenant_id: UUID
    agent_id: UUID


def _admin_request_id() -> str:
    return f"admin_{uuid.uuid4().hex}"


def create_tenant(store: EventStore, name: str) -> UUID:
    """Creates a tenant and its `default` agent (keys without an agent act as it)."""
    tenant_id = tenant_id_for(name)
    with audit_context(str(tenant_id), None, _admin_request_id()):
        tenant = Tenant(name=name)
        agent = Agent(owner_tenant_id=tenant.id, name=DEFAULT_AGENT, daily_cap_usd=None)
    try:
        store.save_events([*tenant.collect_events(), *agent.collect_events()])
    except StoreConflictError:
        raise AlreadyExistsError(f"tenant {name!r} already exists") from None
    return tenant.id


def resolve_tenant(store: EventStore, name_or_id: str) -> Tenant:
    for candidate in _ids(name_or_id, lambda: tenant_id_for(name_or_id)):
        try:
            return store.get(candidate, Tenant)
        except AggregateMissingError:
            continue
    raise UnknownError(f"no tenant named or with id {name_or_id!r}")


def resolve_agent(store: EventStore, tenant: Tenant, name_or_id: str) -> Agent:
    for candidate in _ids(name_or_id, lambda: agent_id_for(tenant.id, name_or_id)):
        try:
            agent = store.get(candidate, Agent)
        except AggregateMissingError:
            continue
        if agent.owner_tenant_id == tenant.id:
            return agent
    raise UnknownError(f"tenant {tenant.name!r} has no agent named or with id {name_or_id!r}")


def create_agent(store: EventStore, tenant_ref: str, name: str, cap: Decimal | None) -> UUID:
    tenant = resolve_tenant(store, tenant_ref)
    with audit_context(str(tenant.id), str(agent_id_for(tenant.id, name)), _admin_request_id()):
        agent = Agent(owner_tenant_id=tenant.id, name=name, daily_cap_usd=cap)
    try:
        store.save_events(agent.collect_events())
    except StoreConflictError:
        raise AlreadyExistsError(f"tenant {tenant.name!r} already has an agent {name!r}") from None
    return agent.id


def set_agent_cap(store: EventStore, tenant_ref: str, agent_ref: str,
                  cap: Decimal | None) -> UUID:
    """Records a SpendPolicySet event; gateways pick the new cap up within their cache TTL."""
    tenant = resolve_tenant(store, tenant_ref)
    agent = resolve_agent(store, tenant, agent_ref)
    with audit_context(str(tenant.id), str(agent.id), _admin_request_id()):
        agent.set_spend_policy(cap)
    try:
        store.save_events(agent.collect_events())
    except StoreConflictError:
        raise ConcurrentChangeError(
            f"agent {agent.name!r} was changed at the same time; run the command again") from None
    return agent.id


def create_key(store: EventStore, tenant_ref: str, agent_ref: str | None) -> IssuedKey:
    tenant = resolve_tenant(store, tenant_ref)
    agent = resolve_agent(store, tenant, agent_ref or DEFAULT_AGENT)
    key = new_api_key()
    key_hash = hash_api_key(key)
    with audit_context(str(tenant.id), str(agent.id), _admin_request_id()):
        api_key = ApiKey(
            key_hash=key_hash, owner_tenant_id=tenant.id, bound_agent_id=agent.id,
            hint=key[:len(KEY_PREFIX) + 4],
        )
    store.save_events(api_key.collect_events())
    return IssuedKey(key=key, key_id=api_key.id, tenant_id=tenant.id, agent_id=agent.id)


def revoke_key(store: EventStore, key_or_id: str) -> UUID:
    if key_or_id.startswith(KEY_PREFIX):
        key_id = key_id_for(hash_api_key(key_or_id))
    else:
        try:
            key_id = UUID(key_or_id)
        except ValueError:
            raise UnknownError(
                f"{key_or_id!r} is neither a key ({KEY_PREFIX}...) nor a key id"
            ) from None
    try:
        api_key = store.get(key_id, ApiKey)
    except AggregateMissingError:
        raise UnknownError("no such key") from None
    with audit_context(str(api_key.owner_tenant_id), str(api_key.bound_agent_id),
                       _admin_request_id()):
        api_key.revoke()
    store.save_events(api_key.collect_events())
    return key_id


def authenticate(store: EventStore, presented: str) -> Caller | None:
    """The caller a presented key speaks for, or None for an unknown or revoked key."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    try:
        api_key = store.get(key_id_for(hash_api_key(presented)), ApiKey)
    except AggregateMissingError:
        return None
    if api_key.revoked:
        return None
    return Caller(tenant_id=api_key.owner_tenant_id, agent_id=api_key.bound_agent_id,
                  key_id=api_key.id)


def _ids(name_or_id: str, by_name: Callable[[], UUID]) -> list[UUID]:
    ids: list[UUID] = []
    with contextlib.suppress(ValueError):
        ids.append(UUID(name_or_id))
    ids.append(by_name())
    return ids


class TenancyServiceError(Exception):
    """Base of the tenancy services' errors."""


class AlreadyExistsError(TenancyServiceError):
    pass


class UnknownError(TenancyServiceError):
    pass


class ConcurrentChangeError(TenancyServiceError):
    pass
