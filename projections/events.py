"""What projections know about events: the event classes they match on (declared on the
aggregates in the domain, so `case Routed(router=r)` is checked by mypy), and the one reading
of a Completed status that every read model shares, taken from `domain.inference.Status`.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Final

from domain.inference import Inference, Status
from domain.tenancy import Agent

Routed = Inference.Routed
Dispatched = Inference.Dispatched
Completed = Inference.Completed
Debited = Inference.Debited
AgentRegistered = Agent.AgentRegistered
SpendPolicySet = Agent.SpendPolicySet

OK_STATUSES: Final = frozenset(s.value for s in Status if s.is_ok)
FALLBACK_STATUSES: Final = frozenset(s.value for s in Status if s.is_fallback)

# Events recorded outside an agent (none from the gateway, whose keys all act as an agent)
# are attributed to this agent id, because keys and primary keys cannot hold NULL.
UNATTRIBUTED: Final = ""


def status_counts(status: str) -> tuple[int, int, int]:
    """(ok, fallback, error) increments for one Completed status."""
    known = Status(status)
    return int(known.is_ok), int(known.is_fallback), int(known.is_error)


def is_error(status: str) -> bool:
    return Status(status).is_error


def inference_key(event: Any) -> str:
    return str(event.originator_id)


def agent_of(event: Any) -> str:
    agent = getattr(event, "agent_id", None)
    return UNATTRIBUTED if agent is None else str(agent)


def utc_day(event: Any) -> str:
    """The UTC calendar date an event was recorded on, as YYYY-MM-DD."""
    day: str = event.timestamp.astimezone(UTC).date().isoformat()
    return day
