"""The base event every aggregate of ours uses: audit ids stamped from the audit context."""

from __future__ import annotations

from dataclasses import field

from eventsourcing.domain import Aggregate

from domain import context


class AuditedEvent(Aggregate.Event):
    """An event that carries tenant, agent and request ids, read from the audit context.

    The fields are not constructor arguments (init=False): they are filled from the ContextVar
    when the event is created, and restored as stored when it is read back.
    """

    tenant_id: str = field(default_factory=context._tenant, init=False)
    agent_id: str | None = field(default_factory=context._agent, init=False)
    request_id: str = field(default_factory=context._request, init=False)


class TenancyEvent(AuditedEvent):
    """An event of a tenant, agent or key: also names the tenant-admin key that made the change
    (`admin_key_id`, None when the operator made it with the CLI), so who changed a cap or
    issued a key is on the hash chain with the change itself.

    Events stored before this field existed read back without it (the library restores the
    stored state as it is), so their ledger objects and leaf hashes do not change.
    """

    admin_key_id: str | None = field(default_factory=context._admin_key, init=False)
