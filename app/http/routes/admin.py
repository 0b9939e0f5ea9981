"""The tenant-admin API (`/v1/admin/...`) and `GET /v1/me`.

An admin key manages its own tenant only: its agents, their daily caps and their keys, and
reads the audit trail of those changes. Every change is a ledger event naming the admin key
that made it (domain.events.TenancyEvent), so it is on the hash chain with the inferences and
checked by `ainfera verify`. An agent key here is 403; another tenant's agent or key is 404.

Writes answer with `position`, the ledger position of the change: send it back as
`x-ainfera-after` on a read to see the change there. The admin reads wait for the read models
to reach the ledger's end by default (they are rare, and an admin expects to see what they just
did), answering 503 with retry-after if that takes over 2 s.

One concept at two layers: this is the admin API; its read queries are `app/services/admin.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from adapters.store import AggregateMissingError
from app.http.auth import provide_admin, provide_principal
from app.http.consistency import ensure_consistent, read_side_of
from app.http.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from app.runtime import Runtime
from app.services import admin as admin_reads
from app.services import tenancy
from app.services.tenancy import Actor, Principal
from domain.money import InvalidAmountError, usd_str
from domain.tenancy import (
    Agent,
    ApiKey,
    KeyAlreadyRevokedError,
    TenancyError,
    Tenant,
    parse_cap,
)

ADMIN = {"admin": Provide(provide_admin)}
READS = ("agents", "usage_daily", "agent_metrics", "ledger_entries")
MAX_AUDIT = 200


class NewAgent(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    daily_cap_usd: str | None = None


class CapChange(msgspec.Struct, forbid_unknown_fields=True):
    daily_cap_usd: str | None
    """The new cap in USD as a decimal string ("10.00"); null lifts the cap."""


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    agent: str
    """The agent (id or name) the key will speak for."""


@contextmanager
def tenancy_errors() -> Iterator[None]:
    """The tenancy rules' and services' errors as the admin API answers them."""
    try:
        yield
    except (TenancyError, InvalidAmountError) as exc:
        raise InvalidRequestError(str(exc)) from None
    except tenancy.UnknownError as exc:
        raise NotFoundError(str(exc)) from None
    except (tenancy.AlreadyExistsError, tenancy.ConcurrentChangeError) as exc:
        raise ConflictError(str(exc)) from None


def _actor(request: Request[Any, Any, Any], admin: Principal) -> Actor:
    return Actor(request_id=request.scope["state"]["request_id"], admin_key_id=admin.key_id)


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _agent(runtime: Runtime, admin: Principal, ref: str) -> Agent:
    with tenancy_errors():
        return tenancy.agent_of_tenant(runtime.store, admin.tenant_id, ref)


@get("/v1/me", dependencies={"caller": Provide(provide_principal)})
async def who_am_i(request: Request[Any, Any, Any],
                   caller: NamedDependency[Principal]) -> dict[str, Any]:
    """Whom the presented key speaks for: its scope, tenant and (agent keys) agent."""
    store = _runtime(request).store
    tenant = await asyncio.to_thread(store.get, caller.tenant_id, Tenant)
    agent: dict[str, Any] | None = None
    if caller.agent_id is not None:
        found = await asyncio.to_thread(store.get, caller.agent_id, Agent)
        agent = {"id": str(found.id), "name": found.name,
                 "daily_cap_usd": None if found.daily_cap_usd is None
                 else usd_str(found.daily_cap_usd)}
    key = await asyncio.to_thread(store.get, caller.key_id, ApiKey)
    return {"object": "key", "key_id": str(caller.key_id), "hint": key.hint,
            "scope": caller.scope, "tenant": {"id": str(tenant.id), "name": tenant.name},
            "agent": agent}


@get("/v1/admin/agents", dependencies=ADMIN)
async def list_agents(request: Request[Any, Any, Any],
                      admin: NamedDependency[Principal]) -> dict[str, Any]:
    reads = read_side_of(request)
    await ensure_consistent(request, reads, READS, True)
    now = datetime.now(UTC)
    rows = await reads.read(lambda s: admin_reads.agents_overview(s, str(admin.tenant_id), now))
    return {"object": "list", "data": rows}


@post("/v1/admin/agents", dependencies=ADMIN, status_code=201)
async def create_agent(request: Request[Any, Any, Any], admin: NamedDependency[Principal],
                       data: JSONBody[NewAgent]) -> dict[str, Any]:
    """Registers an agent (AgentRegistered); 409 if the tenant has one of that name."""
    store = _runtime(request).store
    with tenancy_errors():
        cap = parse_cap(data.daily_cap_usd)
        tenant = await asyncio.to_thread(store.get, admin.tenant_id, Tenant)
        change = await asyncio.to_thread(tenancy.register_agent, store, tenant, data.name, cap,
                                         _actor(request, admin))
    return {"id": str(change.id), "object": "agent", "name": data.name,
            "daily_cap_usd": None if cap is None else usd_str(cap),
            "position": change.position}


@put("/v1/admin/agents/{agent:str}/cap", dependencies=ADMIN)
async def set_cap(request: Request[Any, Any, Any], admin: NamedDependency[Principal],
                  agent: FromPath[str], data: JSONBody[CapChange]) -> dict[str, Any]:
    """Sets (`"10.00"`) or lifts (null) an agent's daily cap (SpendPolicySet); gateways apply
    it within 2 s."""
    runtime = _runtime(request)
    with tenancy_errors():
        cap = parse_cap(data.daily_cap_usd)
        found = await asyncio.to_thread(_agent, runtime, admin, agent)
        change = await asyncio.to_thread(tenancy.change_cap, runtime.store, found, cap,
                                         _actor(request, admin))
    return {"id": str(change.id), "object": "agent", "name": found.name,
            "daily_cap_usd": None if cap is None else usd_str(cap),
            "position": change.position}


@get("/v1/admin/keys", dependencies=ADMIN)
async def list_keys(request: Request[Any, Any, Any], admin: NamedDependency[Principal],
                    agent: FromQuery[str | None] = None) -> dict[str, Any]:
    """The tenant's keys, newest first (hint, scope, agent, who issued and revoked them);
    never a secret. `agent` (id or name) keeps one agent's."""
    runtime = _runtime(request)
    agent_id = None
    if agent is not None:
        agent_id = str((await asyncio.to_thread(_agent, runtime, admin, agent)).id)
    reads = read_side_of(request)
    await ensure_consistent(request, reads, ("ledger_entries",), True)
    rows = await reads.read(lambda s: admin_reads.keys(s, str(admin.tenant_id), agent_id))
    return {"object": "list", "data": rows}


@post("/v1/admin/keys", dependencies=ADMIN, status_code=201)
async def create_key(request: Request[Any, Any, Any], admin: NamedDependency[Principal],
                     data: JSONBody[NewKey]) -> dict[str, Any]:
    """Issues an agent key (KeyIssued). The secret is in this answer only: it is stored as a
    hash and cannot be shown again. Admin keys are made with the CLI only."""
    runtime = _runtime(request)
    found = await asyncio.to_thread(_agent, runtime, admin, data.agent)
    issued = await asyncio.to_thread(tenancy.issue_agent_key, runtime.store, found,
                                     _actor(request, admin))
    return {"id": str(issued.key_id), "object": "api_key", "key": issued.key,
            "hint": issued.hint, "scope": issued.scope, "agent_id": str(found.id),
            "agent_name": found.name, "position": issued.position}


@post("/v1/admin/keys/{key_id:str}/revoke", dependencies=ADMIN, status_code=200)
async def revoke_key(request: Request[Any, Any, Any], admin: NamedDependency[Principal],
                     key_id: FromPath[str]) -> dict[str, Any]:
    """Revokes one of the tenant's agent keys (KeyRevoked); gateways refuse it within the auth
    cache TTL (1 s). 409 if it is revoked already; an admin key is 403 (use the CLI)."""
    store = _runtime(request).store
    api_key = await asyncio.to_thread(_owned_key, store, admin, key_id)
    if api_key.is_admin:
        raise PermissionDeniedError(
            "tenant-admin keys are revoked with the CLI (ainfera key revoke), not the admin API")
    try:
        change = await asyncio.to_thread(tenancy.revoke, store, api_key, _actor(request, admin))
    except KeyAlreadyRevokedError as exc:
        raise ConflictError(str(exc)) from None
    except tenancy.ConcurrentChangeError as exc:
        raise ConflictError(str(exc)) from None
    return {"id": str(change.id), "object": "api_key", "revoked": True,
            "position": change.position}


@get("/v1/admin/audit", dependencies=ADMIN)
async def read_audit(request: Request[Any, Any, Any], admin: NamedDependency[Principal],
                     limit: FromQuery[int] = 50,
                     before: FromQuery[int | None] = None) -> dict[str, Any]:
    """The tenant's tenancy changes from the ledger, newest first: leaf index, type, time,
    who (`by`: an admin key, or the operator's CLI), a one-line summary and the exact event
    object the leaf hashes. `before` (a leaf index, from `next_before`) pages back."""
    if not 1 <= limit <= MAX_AUDIT:
        raise InvalidRequestError(f"limit must be from 1 to {MAX_AUDIT}", param="limit")
    reads = read_side_of(request)
    await ensure_consistent(request, reads, ("agents", "ledger_entries"), True)
    return await reads.read(
        lambda s: admin_reads.audit(s, str(admin.tenant_id), limit, before))


def _owned_key(store: Any, admin: Principal, key_id: str) -> ApiKey:
    try:
        api_key: ApiKey = store.get(UUID(key_id), ApiKey)
    except (ValueError, AggregateMissingError):
        raise NotFoundError(f"no key {key_id!r}") from None
    if api_key.owner_tenant_id != admin.tenant_id:
        raise NotFoundError(f"no key {key_id!r}")
    return api_key


ROUTES = [who_am_i, list_agents, create_agent, set_cap, list_keys, create_key, revoke_key,
          read_audit]
