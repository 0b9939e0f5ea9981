"""Tenancy services: create tenants, agents and keys; resolve names; authenticate keys (the use
cases over the aggregates of domain/tenancy.py, the same concept one layer out).

Thin application services in the eventsourcing style: load, call a domain method, save, return
ids. Every event they record carries an audit context: the request id and, for a change asked
over the admin API, the tenant-admin key that asked (`Actor`); the CLI acts as the operator.
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
from domain.tenancy import ADMIN_SCOPE, AGENT_SCOPE, Agent, ApiKey, Tenant

DEFAULT_AGENT = "default"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an agent-scoped API key speaks for: one agent of one tenant."""

    tenant_id: UUID
    agent_id: UUID
    key_id: UUID


@dataclass(frozen=True, slots=True)
class Principal:
    """Whom a valid key speaks for: an agent key (`agent_id` set) or a tenant-admin key
    (`agent_id` None: it acts for the tenant and no agent). Reads accept both; inference
    calls need `as_caller()`, the admin API `is_admin`."""

    tenant_id: UUID
    key_id: UUID
    agent_id: UUID | None

    @property
    def is_admin(self) -> bool:
        return self.agent_id is None

    @property
    def scope(self) -> str:
        return ADMIN_SCOPE if self.agent_id is None else AGENT_SCOPE

    def as_caller(self) -> Caller | None:
        if self.agent_id is None:
            return None
        return Caller(tenant_id=self.tenant_id, agent_id=self.agent_id, key_id=self.key_id)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is making a tenancy change: the operator at the shell (no key), or an admin key
    (over the admin API, for its own tenant only). `request_id` ties the change's events to
    the request that made them."""

    request_id: str
    admin_key_id: UUID | None = None

    @classmethod
    def operator(cls) -> Actor:
        return cls(request_id=f"admin_{uuid.uuid4().hex}")

    def audit(self, tenant_id: UUID, agent_id: UUID | None) -> audit_context:
        return audit_context(str(tenant_id), None if agent_id is None else str(agent_id),
                             self.request_id,
                             None if self.admin_key_id is None else str(self.admin_key_id))


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str
    key_id: UUID
    tenant_id: UUID
    agent_id: UUID | None
    scope: str
    hint: str
    position: int = 0
    """The notification id of the KeyIssued event (for read-your-writes)."""


@dataclass(frozen=True, slots=True)
class Change:
    """A recorded tenancy change: the aggregate changed and the ledger position of its last
    event, which a reader passes as `x-ainfera-after` to see the change in the read models."""

    id: UUID
    position: int


def _save(store: EventStore, aggregate: Tenant | Agent | ApiKey) -> int:
    recordings = store.save_events(aggregate.collect_events())
    return max((r.notification.id for r in recordings), default=0)


def create_tenant(store: EventStore, name: str) -> UUID:
    """Creates a tenant and its `default` agent (keys without an agent act as it)."""
    tenant_id = tenant_id_for(name)
    with Actor.operator().audit(tenant_id, None):
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


def agent_of_tenant(store: EventStore, tenant_id: UUID, name_or_id: str) -> Agent:
    """The tenant's agent with that id or name; UnknownError for any other (another tenant's
    agent included, so ids leak nothing)."""
    for candidate in _ids(name_or_id, lambda: agent_id_for(tenant_id, name_or_id)):
        try:
            agent = store.get(candidate, Agent)
        except AggregateMissingError:
            continue
        if agent.owner_tenant_id == tenant_id:
            return agent
    raise UnknownError(f"no agent named or with id {name_or_id!r}")


def create_agent(store: EventStore, tenant_ref: str, name: str, cap: Decimal | None,
                 actor: Actor | None = None) -> UUID:
    return register_agent(store, resolve_tenant(store, tenant_ref), name, cap, actor).id


def register_agent(store: EventStore, tenant: Tenant, name: str, cap: Decimal | None,
                   actor: Actor | None = None) -> Change:
    actor = actor or Actor.operator()
    with actor.audit(tenant.id, agent_id_for(tenant.id, name)):
        agent = Agent(owner_tenant_id=tenant.id, name=name, daily_cap_usd=cap)
    try:
        position = _save(store, agent)
    except StoreConflictError:
        raise AlreadyExistsError(f"tenant {tenant.name!r} already has an agent {name!r}") from None
    return Change(agent.id, position)


def set_agent_cap(store: EventStore, tenant_ref: str, agent_ref: str,
                  cap: Decimal | None) -> UUID:
    """Records a SpendPolicySet event; gateways pick the new cap up within their cache TTL."""
    tenant = resolve_tenant(store, tenant_ref)
    return change_cap(store, resolve_agent(store, tenant, agent_ref), cap).id


def change_cap(store: EventStore, agent: Agent, cap: Decimal | None,
               actor: Actor | None = None) -> Change:
    actor = actor or Actor.operator()
    with actor.audit(agent.owner_tenant_id, agent.id):
        agent.set_spend_policy(cap)
    try:
        position = _save(store, agent)
    except StoreConflictError:
        raise ConcurrentChangeError(
            f"agent {agent.name!r} was changed at the same time; try again") from None
    return Change(agent.id, position)


def create_key(store: EventStore, tenant_ref: str, agent_ref: str | None,
               *, admin: bool = False) -> IssuedKey:
    """An agent key (for `agent_ref`, else the default agent) or, with `admin`, a tenant-admin
    key bound to no agent. Only the operator's CLI makes admin keys: the admin API issues agent
    keys only, so an admin key cannot mint more admin keys."""
    tenant = resolve_tenant(store, tenant_ref)
    if admin:
        if agent_ref is not None:
            raise UsageError("an admin key is not bound to an agent: give --admin or --agent")
        return _issue(store, tenant.id, None, Actor.operator())
    return issue_agent_key(store, resolve_agent(store, tenant, agent_ref or DEFAULT_AGENT))


def issue_agent_key(store: EventStore, agent: Agent, actor: Actor | None = None) -> IssuedKey:
    return _issue(store, agent.owner_tenant_id, agent.id, actor or Actor.operator())


def _issue(store: EventStore, tenant_id: UUID, agent_id: UUID | None, actor: Actor) -> IssuedKey:
    key = new_api_key()
    scope = AGENT_SCOPE if agent_id is not None else ADMIN_SCOPE
    hint = key[:len(KEY_PREFIX) + 4]
    with actor.audit(tenant_id, agent_id):
        api_key = ApiKey(key_hash=hash_api_key(key), owner_tenant_id=tenant_id,
                         bound_agent_id=agent_id, hint=hint, scope=scope)
    position = _save(store, api_key)
    return IssuedKey(key=key, key_id=api_key.id, tenant_id=tenant_id, agent_id=agent_id,
                     scope=scope, hint=hint, position=position)


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
    return revoke(store, api_key).id


def revoke(store: EventStore, api_key: ApiKey, actor: Actor | None = None) -> Change:
    """Records KeyRevoked; raises KeyAlreadyRevokedError for a key revoked before."""
    actor = actor or Actor.operator()
    with actor.audit(api_key.owner_tenant_id, api_key.bound_agent_id):
        api_key.revoke()
    try:
        position = _save(store, api_key)
    except StoreConflictError:
        raise ConcurrentChangeError("the key was changed at the same time; try again") from None
    return Change(api_key.id, position)


def authenticate(store: EventStore, presented: str) -> Principal | None:
    """Whom a presented key speaks for, or None for an unknown or revoked key."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    try:
        api_key = store.get(key_id_for(hash_api_key(presented)), ApiKey)
    except AggregateMissingError:
        return None
    if api_key.revoked:
        return None
    # bound_agent_id is None exactly for admin keys (domain.tenancy.check_scope).
    return Principal(tenant_id=api_key.owner_tenant_id, key_id=api_key.id,
                     agent_id=api_key.bound_agent_id)


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


class UsageError(TenancyServiceError):
    pass
