"""Audit context: who is acting, set once at the edge and stamped on every event.

Tenant, agent and request ids ride in a ContextVar rather than in command arguments, so no
command can forget them and no event can be recorded without them. Nothing here does I/O.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AuditContext:
    """The ids every event carries: whose call it is and which request caused it."""

    tenant_id: str
    agent_id: str | None
    request_id: str
    admin_key_id: str | None = None
    """The tenant-admin key that asked for a tenancy change over the admin API; None when the
    operator made it at the shell (or for a gateway call, which no admin key makes)."""


_current: ContextVar[AuditContext | None] = ContextVar("ainfera_audit", default=None)


def current_audit() -> AuditContext:
    """The audit context in force; raises rather than letting an anonymous event through."""
    ctx = _current.get()
    if ctx is None:
        raise MissingAuditContextError(
            "no audit context is set: events must be created inside audit_context()"
        )
    return ctx


class audit_context:
    """Sets the audit context for the events created inside the block.

    A class rather than a @contextmanager generator: it is entered several times per
    inference on the request path, and a generator per entry is measurably dearer."""

    __slots__ = ("_ctx", "_token")

    def __init__(self, tenant_id: str, agent_id: str | None, request_id: str,
                 admin_key_id: str | None = None) -> None:
        self._ctx = AuditContext(tenant_id=tenant_id, agent_id=agent_id, request_id=request_id,
                                 admin_key_id=admin_key_id)
        self._token: Token[AuditContext | None] | None = None

    def __enter__(self) -> AuditContext:
        self._token = _current.set(self._ctx)
        return self._ctx

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


def set_audit_context(ctx: AuditContext) -> None:
    """Sets the context for the rest of the current task (used by request middleware)."""
    _current.set(ctx)


def _tenant() -> str:
    return current_audit().tenant_id


def _agent() -> str | None:
    return current_audit().agent_id


def _request() -> str:
    return current_audit().request_id


def _admin_key() -> str | None:
    return current_audit().admin_key_id


class MissingAuditContextError(RuntimeError):
    """An event was about to be created without tenant, agent and request ids."""
