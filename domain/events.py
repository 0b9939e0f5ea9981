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
