"""Audit context: who is acting, set once at the edge and stamped on every event.

Tenant, agent and request ids ride in a ContextVar rather than in command arguments, so no
command can forget them and no event can be recorded without them. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AuditContext:
    """The ids every event carries: whose call it is and which request caused it."""

    tenant_id: str
    agent_id: str | None
    request_id: str


_current: ContextVar[AuditContext | None] = ContextVar("ainfera_audit", default=None)


def current_audit() -> AuditContext:
    """The audit context in force; raises rather than letting an anonymous event through."""
    ctx = _current.get()
    if ctx is None:
        raise MissingAuditContextError(
            "no audit context is set: events must be created inside audit_context()"
        )
    return ctx


@contextmanager
def audit_context(tenant_id: str, agent_id: str | None, request_id: str) -> Iterator[AuditContext]:
    """Sets the audit context for the events created inside the block."""
    ctx = AuditContext(tenant_id=tenant_id, agent_id=agent_id, request_id=request_id)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def set_audit_context(ctx: AuditContext) -> None:
    """Sets the context for the rest of the current task (used by request middleware)."""
    _current.set(ctx)


def _tenant() -> str:
    return current_audit().tenant_id


def _agent() -> str | None:
    return current_audit().agent_id


def _request() -> str:
    return current_audit().request_id


class MissingAuditContextError(RuntimeError):
    """An event was about to be created without tenant, agent and request ids."""
