"""`ainfera verify`, spend counters: Redis against the ledger. The ledger (usage_daily, caught
up) is the truth; a Redis counter that disagrees for today is named. Counters settle a moment
after their Debited event commits, so run it when traffic is quiet or expect in-flight calls to
show."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from adapters.budget import BudgetError
from adapters.budget_redis import RedisBudgetCounter
from adapters.database import Database
from app.services.repair import spend_by_agent
from projections.view import Session


def verify_counters(database: Database, redis_url: str, prefix: str) -> list[str]:
    day = datetime.now(UTC).date()
    conn = database.connect()
    try:
        ledger = spend_by_agent(Session(conn, database.kind), day)
    finally:
        conn.close()
    return asyncio.run(_compare(ledger, redis_url, prefix, day.isoformat()))


async def _compare(ledger: dict[str, Decimal], redis_url: str, prefix: str,
                   day: str) -> list[str]:
    counter = RedisBudgetCounter.from_url(redis_url, prefix=prefix)
    problems: list[str] = []
    try:
        if await counter.needs_rebuild():
            return [f"Redis spend counters under {prefix!r} are missing (lost or never built); "
                    "the next call rebuilds them from the ledger"]
        today = datetime.fromisoformat(day).date()
        for agent_id, spent in sorted(ledger.items()):
            usage = await counter.usage(agent_id, today)
            if usage.settled != spent:
                problems.append(f"spend counter for agent {agent_id} on {day}: Redis has "
                                f"{usage.settled.normalize()} settled, the ledger "
                                f"{spent.normalize()}")
    except BudgetError as exc:
        problems.append(f"Redis spend counters could not be read: {exc}")
    finally:
        await counter.aclose()
    return problems
