"""Every read model the projector drives, by name. Adding one is a ReadModel subclass (its
module, its migration) plus one line here; the gateway's projector, `ainfera project`, `verify`,
`rebuild` and `/metrics` all take their list from this registry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from projections.agent_metrics import AgentMetrics
from projections.agents import Agents
from projections.decisions import Decisions
from projections.fold import ReadModel
from projections.ledger_entries import LedgerEntries
from projections.projector import NotificationSource, Projector
from projections.routing_outcomes import RoutingOutcomes
from projections.usage_daily import UsageDaily
from projections.view import Connect

PROJECTIONS: tuple[type[ReadModel], ...] = (
    Agents,
    RoutingOutcomes,
    UsageDaily,
    AgentMetrics,
    Decisions,
    LedgerEntries,
)


def names() -> list[str]:
    return [p.name for p in PROJECTIONS]


def projection_class(name: str) -> type[ReadModel]:
    for cls in PROJECTIONS:
        if cls.name == name:
            return cls
    raise UnknownProjectionError(f"no projection {name!r}; known: {', '.join(names())}")


def build_projector(connect: Connect, kind: str, source: NotificationSource,
                    only: Iterable[str] | None = None, *, batch_size: int = 500,
                    poll_interval: float = 0.25, limits: Mapping[str, int] | None = None,
                    listen_connect: Connect | None = None,
                    channel: str | None = None) -> Projector:
    """One projector over every registered read model (or the ones named in `only`), on its
    own connection, ready to run."""
    chosen = [projection_class(n) for n in dict.fromkeys(only)] if only else list(PROJECTIONS)
    return Projector([cls() for cls in chosen], source, connect, kind, batch_size=batch_size,
                     poll_interval=poll_interval, limits=limits,
                     listen_connect=listen_connect, channel=channel)


class UnknownProjectionError(LookupError):
    """A projection name that is not in the registry."""
