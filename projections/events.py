"""What projections know about events: the event classes they match on, and the one reading
of a Completed status that every read model shares (so usage and metrics never disagree about
what counts as an error).

The library creates event classes from the `@event` decorators at class creation, so the type
checker cannot see `Inference.Routed`; they are looked up once here, and a renamed event fails
at import rather than silently matching nothing.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Final

from domain.inference import Inference
from domain.tenancy import Agent


def _event_class(aggregate: type[Any], name: str) -> type[Any]:
    cls = vars(aggregate).get(name)
    if not isinstance(cls, type):
        raise ImportError(f"{aggregate.__name__} has no event class {name!r}")
    return cls


Routed: Final = _event_class(Inference, "Routed")
Dispatched: Final = _event_class(Inference, "Dispatched")
Completed: Final = _event_class(Inference, "Completed")
Debited: Final = _event_class(Inference, "Debited")
AgentRegistered: Final = _event_class(Agent, "AgentRegistered")
SpendPolicySet: Final = _event_class(Agent, "SpendPolicySet")

# Completed statuses. `fallback_succeeded` is a success that needed a fallback: it counts as ok
# AND as fallback, so ok + error is every completed call and fallback is a subset of ok.
OK_STATUSES: Final = frozenset({"succeeded", "fallback_succeeded"})
FALLBACK_STATUSES: Final = frozenset({"fallback_succeeded"})
# Everything else (failed, rejected_floor, rejected_budget, cancelled, abandoned) is an error.

# Events recorded outside an agent (none from the gateway, whose keys all act as an agent)
# are attributed to this agent id, because keys and primary keys cannot hold NULL.
UNATTRIBUTED: Final = ""


def status_counts(status: str) -> tuple[int, int, int]:
    """(ok, fallback, error) increments for one Completed status."""
    ok = status in OK_STATUSES
    return int(ok), int(status in FALLBACK_STATUSES), int(not ok)


def is_error(status: str) -> bool:
    return status not in OK_STATUSES


def inference_key(event: Any) -> str:
    return str(event.originator_id)


def agent_of(event: Any) -> str:
    agent = getattr(event, "agent_id", None)
    return UNATTRIBUTED if agent is None else str(agent)


def utc_day(event: Any) -> str:
    """The UTC calendar date an event was recorded on, as YYYY-MM-DD."""
    day: str = event.timestamp.astimezone(UTC).date().isoformat()
    return day
