"""usage_daily: per tenant, agent and UTC date, the calls made and what they cost.

A call belongs to the UTC date its Routed event was recorded on, even if it completes after
midnight. `calls` counts every call (routed and passthrough) when it is routed; `ok`,
`fallback` and `error` count completed calls by status (see projections.events: fallback is
a subset of ok, so calls = ok + error + calls still in flight); `cost_nano_usd` sums the debits
in whole nano-dollars (each rounded up: domain.money), so `SUM(cost_nano_usd)` is exact in SQL.

`usage_daily_inferences` is this projection's own memory of which row each inference counts
in, because Completed and Debited do not carry the date the call was routed on.

The fold is pure: a batch becomes the memory rows of the calls it routed plus each inference's
increments, and the database adds them up: one statement joins the increments with the memory
(so an inference routed in an earlier batch needs no read first) and upserts one row per
(tenant, agent, day) with `calls = usage_daily.calls + excluded.calls`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from domain.money import to_nanos
from projections.events import (
    Completed,
    Debited,
    Routed,
    agent_of,
    status_counts,
    utc_day,
)
from projections.fold import ReadModel, Sequenced
from projections.view import Session

REMEMBER = (
    "INSERT INTO usage_daily_inferences (inference_id, tenant_id, agent_id, day) "
    "VALUES {values}"
)
ADD = (
    "WITH d (inference_id, calls, cost, ok, fallback, error) AS (VALUES {values}) "
    "INSERT INTO usage_daily (tenant_id, agent_id, day, calls, cost_nano_usd, ok, fallback, "
    "error) "
    "SELECT m.tenant_id, m.agent_id, m.day, CAST(SUM(CAST(d.calls AS BIGINT)) AS BIGINT), "
    "CAST(SUM(CAST(d.cost AS BIGINT)) AS BIGINT), CAST(SUM(CAST(d.ok AS BIGINT)) AS BIGINT), "
    "CAST(SUM(CAST(d.fallback AS BIGINT)) AS BIGINT), "
    "CAST(SUM(CAST(d.error AS BIGINT)) AS BIGINT) "
    "FROM d JOIN usage_daily_inferences m ON m.inference_id = d.inference_id "
    # SQLite needs a WHERE before an upsert's ON CONFLICT in INSERT ... SELECT (parsing).
    "WHERE 1 = 1 GROUP BY m.tenant_id, m.agent_id, m.day "
    "ON CONFLICT (tenant_id, agent_id, day) DO UPDATE SET "
    "calls = usage_daily.calls + excluded.calls, "
    "cost_nano_usd = usage_daily.cost_nano_usd + excluded.cost_nano_usd, "
    "ok = usage_daily.ok + excluded.ok, fallback = usage_daily.fallback + excluded.fallback, "
    "error = usage_daily.error + excluded.error"
)
READ_DAYS = (
    "SELECT day, agent_id, calls, cost_nano_usd, ok, fallback, error FROM usage_daily "
    "WHERE tenant_id = %s AND day >= %s AND day <= %s ORDER BY day, agent_id"
)
SPENT_ON = (
    "SELECT agent_id, SUM(cost_nano_usd) FROM usage_daily WHERE day = %s GROUP BY agent_id"
)


@dataclass
class UsageChanges:
    """What one batch adds: the calls it routed (inference -> tenant, agent, day) and, per
    inference, [calls, cost in nano-dollars, ok, fallback, error] to add to its row."""

    routed: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    increments: dict[str, list[int]] = field(default_factory=dict)

    def add(self, inference: str, column: int, amount: int) -> None:
        self.increments.setdefault(inference, [0, 0, 0, 0, 0])[column] += amount


def fold(batch: Sequence[Sequenced]) -> UsageChanges:
    changes = UsageChanges()
    for item in batch:
        event = item.event
        match event:
            case Routed():
                key = item.key
                changes.routed[key] = (str(event.tenant_id), agent_of(event), utc_day(event))
                changes.add(key, 0, 1)
            case Completed():
                ok, fallback, error = status_counts(event.status)
                key = item.key
                changes.add(key, 2, ok)
                changes.add(key, 3, fallback)
                changes.add(key, 4, error)
            case Debited():
                changes.add(item.key, 1, to_nanos(event.cost_usd, "up"))
            case _:
                pass
    return changes


class UsageDaily(ReadModel):
    name = "usage_daily"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "usage_daily": ("tenant_id", "agent_id", "day"),
        "usage_daily_inferences": ("inference_id",),
    }

    def apply(self, session: Session, batch: Sequence[Sequenced]) -> None:
        changes = fold(batch)
        # Memory first: the increments below find the rows of calls routed in this batch too.
        session.execute_values(REMEMBER, [(inference, *key)
                                          for inference, key in changes.routed.items()])
        session.execute_values(ADD, [(inference, *amounts)
                                     for inference, amounts in changes.increments.items()])


def read_days(session: Session, tenant_id: str, first: str, last: str) -> list[tuple[Any, ...]]:
    """Rows (day, agent_id, calls, cost in nano-dollars, ok, fallback, error) of one tenant,
    first..last."""
    return session.execute(READ_DAYS, (tenant_id, first, last))


def spent_on(session: Session, day: date) -> dict[str, int]:
    """Nano-dollars debited per agent on a UTC day, summed by the database."""
    return {str(agent): int(total) for agent, total in session.execute(SPENT_ON,
                                                                        (day.isoformat(),))}
