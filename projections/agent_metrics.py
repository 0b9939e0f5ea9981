"""agent_metrics: one row per inference (routed and passthrough alike) with what a 24-hour
window per agent is computed from: completion time, status, latency and cost (whole
nano-dollars, rounded up: domain.money).

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

from domain.money import from_nanos, to_nanos, usd_str
from projections.events import (
    Completed,
    Debited,
    Routed,
    agent_of,
    is_error,
)
from projections.fold import KeyedRows, ReadModel, Sequenced
from projections.view import Session

TABLE = "agent_metrics"
COLUMNS = ("inference_id", "tenant_id", "agent_id", "router", "status", "latency_ms",
           "cost_nano_usd", "created_at", "completed_at")
OUTCOMES_BY_DAY = (
    "SELECT substr(created_at, 1, 10), status, COUNT(*), SUM(cost_nano_usd) FROM agent_metrics "
    "WHERE tenant_id = %s AND created_at >= %s AND created_at < %s{agent} "
    "GROUP BY substr(created_at, 1, 10), status"
)
WINDOW = (
    "SELECT agent_id, status, latency_ms, cost_nano_usd FROM agent_metrics "
    "WHERE tenant_id = %s AND completed_at > %s AND completed_at <= %s"
)


def fold(batch: Sequence[Sequenced]) -> KeyedRows:
    rows = KeyedRows(TABLE, "inference_id", COLUMNS)
    for item in batch:
        event = item.event
        match event:
            case Routed():
                rows.create(item.key, tenant_id=str(event.tenant_id),
                            agent_id=agent_of(event), router=event.router,
                            created_at=item.recorded_at)
            case Completed():
                rows.set(item.key, status=event.status,
                         latency_ms=event.latency_ms, completed_at=item.recorded_at)
            case Debited():
                rows.set(item.key, cost_nano_usd=to_nanos(event.cost_usd, "up"))
            case _:
                pass
    return rows


class AgentMetrics(ReadModel):
    name = "agent_metrics"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {TABLE: ("inference_id",)}

    def apply(self, session: Session, batch: Sequence[Sequenced]) -> None:
        fold(batch).write(session)


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
    """(agent_id, status, latency_ms, cost in nano-dollars) of a tenant's (or one agent's)
    calls completed in (since, until]."""
    if agent_id is None:
        return session.execute(WINDOW, (tenant_id, since, until))
    return session.execute(WINDOW + " AND agent_id = %s", (tenant_id, since, until, agent_id))


def outcomes_by_day(session: Session, tenant_id: str, since: str, until: str,
                    agent_id: str | None = None) -> list[tuple[str, str | None, int, int]]:
    """(UTC day routed, status or None while in flight, calls, nano-dollars debited) of a
    tenant's (or one agent's) calls routed in [since, until), added up by the database: the
    input of usage split by exact status."""
    if agent_id is None:
        rows = session.execute(OUTCOMES_BY_DAY.replace("{agent}", ""), (tenant_id, since, until))
    else:
        rows = session.execute(OUTCOMES_BY_DAY.replace("{agent}", " AND agent_id = %s"),
                               (tenant_id, since, until, agent_id))
    return [(str(day), None if status is None else str(status), int(calls),
             int(spent or 0)) for day, status, calls, spent in rows]


def window_stats(rows: Iterable[Sequence[Any]]) -> WindowStats:
    calls = errors = cost = 0
    latencies: list[int] = []
    for _agent, status, latency_ms, cost_nanos in rows:
        calls += 1
        errors += is_error(status)
        if cost_nanos is not None:
            cost += int(cost_nanos)
        if latency_ms is not None:
            latencies.append(int(latency_ms))
    latencies.sort()
    return WindowStats(calls, errors, from_nanos(cost), percentile(latencies, 50),
                       percentile(latencies, 95))


def percentile(ordered: Sequence[int], pct: int) -> int | None:
    """Nearest-rank percentile of an ascending sequence: a value that was observed."""
    if not ordered:
        return None
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]
