"""agent_metrics: one row per inference (routed and passthrough alike) with what a 24-hour
window per agent is computed from: completion time, status, latency and cost.

The projection stores inputs, not percentiles: p50/p95 and error rates over a sliding window
depend on the reader's clock, and a projection must be a function of the events alone so a
rebuild reproduces it byte for byte. The window arithmetic lives in `window_stats`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking

from domain.money import usd_str
from projections.events import (
    Completed,
    Debited,
    Routed,
    agent_of,
    inference_key,
    is_error,
)
from projections.view import Session, SqlProjection, utc_text

INSERT = (
    "INSERT INTO agent_metrics (inference_id, tenant_id, agent_id, router, created_at) "
    "VALUES (%s, %s, %s, %s, %s)"
)
COMPLETE = (
    "UPDATE agent_metrics SET status = %s, latency_ms = %s, completed_at = %s "
    "WHERE inference_id = %s"
)
DEBIT = "UPDATE agent_metrics SET cost_usd = %s WHERE inference_id = %s"
CREATED_BETWEEN = (
    "SELECT agent_id, status, cost_usd, created_at FROM agent_metrics "
    "WHERE tenant_id = %s AND created_at >= %s AND created_at < %s"
)
WINDOW = (
    "SELECT agent_id, status, latency_ms, cost_usd FROM agent_metrics "
    "WHERE tenant_id = %s AND completed_at > %s AND completed_at <= %s"
)


class AgentMetrics(SqlProjection):
    name = "agent_metrics"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {"agent_metrics": ("inference_id",)}

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        with self.view.transaction() as tx:
            match domain_event:
                case Routed():
                    tx.execute(INSERT, (
                        inference_key(domain_event), str(domain_event.tenant_id),
                        agent_of(domain_event), domain_event.router,
                        utc_text(domain_event.timestamp),
                    ))
                case Completed():
                    tx.execute(COMPLETE, (
                        domain_event.status, domain_event.latency_ms,
                        utc_text(domain_event.timestamp), inference_key(domain_event),
                    ))
                case Debited():
                    tx.execute(DEBIT, (domain_event.cost_usd, inference_key(domain_event)))
                case _:
                    pass
            self.view.track(tracking)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Calls completed in a window: `error_rate` is errors / calls (0 with no calls);
    latencies are nearest-rank percentiles in ms, None when no call reported a latency."""

    calls: int
    errors: int
    cost_usd: Decimal
    latency_p50_ms: int | None
    latency_p95_ms: int | None

    @property
    def error_rate(self) -> float:
        return round(self.errors / self.calls, 4) if self.calls else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cost_usd": usd_str(self.cost_usd),
            "error_rate": self.error_rate,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
        }


def window_rows(session: Session, tenant_id: str, since: str, until: str,
                agent_id: str | None = None) -> list[tuple[Any, ...]]:
    """(agent_id, status, latency_ms, cost_usd) of a tenant's (or one agent's) calls completed
    in (since, until]."""
    if agent_id is None:
        return session.execute(WINDOW, (tenant_id, since, until))
    return session.execute(WINDOW + " AND agent_id = %s", (tenant_id, since, until, agent_id))


def created_rows(session: Session, tenant_id: str, since: str, until: str,
                 agent_id: str | None = None) -> list[tuple[Any, ...]]:
    """(agent_id, status, cost_usd, created_at) of a tenant's (or one agent's) calls routed
    in [since, until): the input of usage split by exact status."""
    if agent_id is None:
        return session.execute(CREATED_BETWEEN, (tenant_id, since, until))
    return session.execute(CREATED_BETWEEN + " AND agent_id = %s",
                           (tenant_id, since, until, agent_id))


def window_stats(rows: Iterable[Sequence[Any]]) -> WindowStats:
    calls = errors = 0
    cost = Decimal(0)
    latencies: list[int] = []
    for _agent, status, latency_ms, cost_usd in rows:
        calls += 1
        errors += is_error(status)
        if cost_usd is not None:
            cost += Decimal(cost_usd)
        if latency_ms is not None:
            latencies.append(int(latency_ms))
    latencies.sort()
    return WindowStats(calls, errors, cost, percentile(latencies, 50), percentile(latencies, 95))


def percentile(ordered: Sequence[int], pct: int) -> int | None:
    """Nearest-rank percentile of an ascending sequence: a value that was observed."""
    if not ordered:
        return None
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]
