"""Every projection the runners drive, by name. Adding a read model is one SqlProjection
subclass (its module, its migration) plus one line here; `ainfera project`, the gateway's
in-process runners, `verify` and `rebuild` all take their list from this registry."""

from __future__ import annotations

from collections.abc import Iterable

from projections.agent_metrics import AgentMetrics
from projections.agents import Agents
from projections.decisions import Decisions
from projections.ledger_entries import LedgerEntries
from projections.routing_outcomes import RoutingOutcomes
from projections.runner import NotificationSource, ProjectionRunner
from projections.shared_source import SharedDecodeSource
from projections.usage_daily import UsageDaily
from projections.view import Connect, SqlProjection, SqlView

PROJECTIONS: tuple[type[SqlProjection], ...] = (
    Agents,
    RoutingOutcomes,
    UsageDaily,
    AgentMetrics,
    Decisions,
    LedgerEntries,
)


def names() -> list[str]:
    return [p.name for p in PROJECTIONS]


def projection_class(name: str) -> type[SqlProjection]:
    for cls in PROJECTIONS:
        if cls.name == name:
            return cls
    raise UnknownProjectionError(f"no projection {name!r}; known: {', '.join(names())}")


def build_runner(cls: type[SqlProjection], connect: Connect, kind: str,
                 source: NotificationSource, *, batch_size: int = 500,
                 poll_interval: float = 0.25, stop_at: int | None = None) -> ProjectionRunner:
    """A projection on its own view (its own connection), ready to run."""
    projection = cls(view=SqlView(cls.name, connect, kind))
    return ProjectionRunner(projection, source, batch_size=batch_size,
                            poll_interval=poll_interval, stop_at=stop_at)


def build_runners(connect: Connect, kind: str, source: NotificationSource,
                  only: Iterable[str] | None = None, *, batch_size: int = 500,
                  poll_interval: float = 0.25) -> list[ProjectionRunner]:
    chosen = [projection_class(n) for n in only] if only else list(PROJECTIONS)
    shared = SharedDecodeSource(source)
    return [build_runner(cls, connect, kind, shared, batch_size=batch_size,
                         poll_interval=poll_interval) for cls in chosen]


class UnknownProjectionError(LookupError):
    """A projection name that is not in the registry."""
