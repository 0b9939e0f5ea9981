"""usage_daily: per tenant, agent and UTC date, the calls made and what they cost.

A call belongs to the UTC date its Routed event was recorded on, even if it completes after
midnight. `calls` counts every call (routed and passthrough) when it is routed; `ok`,
`fallback` and `error` count completed calls by status (see projections.events: fallback is
a subset of ok, so calls = ok + error + calls still in flight); `cost_usd` sums the debits.
Money is a decimal string summed with Decimal, never a float.

`usage_daily_inferences` is this projection's own memory of which row each inference counts
in, because Completed and Debited do not carry the date the call was routed on.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    status_counts,
    utc_day,
)
from projections.view import Session, SqlProjection

REMEMBER = (
    "INSERT INTO usage_daily_inferences (inference_id, tenant_id, agent_id, day) "
    "VALUES (%s, %s, %s, %s)"
)
RECALL = "SELECT tenant_id, agent_id, day FROM usage_daily_inferences WHERE inference_id = %s"
COUNT_CALL = (
    "INSERT INTO usage_daily (tenant_id, agent_id, day, calls, cost_usd, ok, fallback, error) "
    "VALUES (%s, %s, %s, 1, '0', 0, 0, 0) ON CONFLICT (tenant_id, agent_id, day) "
    "DO UPDATE SET calls = usage_daily.calls + 1"
)
COUNT_STATUS = (
    "UPDATE usage_daily SET ok = ok + %s, fallback = fallback + %s, error = error + %s "
    "WHERE tenant_id = %s AND agent_id = %s AND day = %s"
)
COST = "SELECT cost_usd FROM usage_daily WHERE tenant_id = %s AND agent_id = %s AND day = %s"
SET_COST = (
    "UPDATE usage_daily SET cost_usd = %s WHERE tenant_id = %s AND agent_id = %s AND day = %s"
)
READ_DAYS = (
    "SELECT day, agent_id, calls, cost_usd, ok, fallback, error FROM usage_daily "
    "WHERE tenant_id = %s AND day >= %s AND day <= %s ORDER BY day, agent_id"
)


class UsageDaily(SqlProjection):
    name = "usage_daily"
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "usage_daily": ("tenant_id", "agent_id", "day"),
        "usage_daily_inferences": ("inference_id",),
    }

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        with self.view.transaction() as tx:
            match domain_event:
                case Routed():
                    key = (str(domain_event.tenant_id), agent_of(domain_event),
                           utc_day(domain_event))
                    tx.execute(REMEMBER, (inference_key(domain_event), *key))
                    tx.execute(COUNT_CALL, key)
                case Completed():
                    row = tx.execute(RECALL, (inference_key(domain_event),))
                    if row:
                        tx.execute(COUNT_STATUS, (*status_counts(domain_event.status), *row[0]))
                case Debited():
                    row = tx.execute(RECALL, (inference_key(domain_event),))
                    if row:
                        # Read-modify-write is safe: the batch holds this projection's
                        # position lock, so no other runner writes these rows meanwhile.
                        (spent,) = tx.execute(COST, row[0])[0]
                        total = Decimal(spent) + Decimal(domain_event.cost_usd)
                        tx.execute(SET_COST, (usd_str(total), *row[0]))
                case _:
                    pass
            self.view.track(tracking)


def read_days(session: Session, tenant_id: str, first: str, last: str) -> list[tuple[Any, ...]]:
    """Rows (day, agent_id, calls, cost_usd, ok, fallback, error) of one tenant, first..last."""
    return session.execute(READ_DAYS, (tenant_id, first, last))
