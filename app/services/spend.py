"""Spend caps as the write path sees them: an agent's daily cap (read from the ledger, cached
for AGENT_CAP_TTL_S), reservations against the shared counters, settlement in the background
so a cancelled caller cannot skip it, and the counters' rebuild from the ledger when they are
lost.

The counters (Redis, or in-process) are only a fast copy: the ledger's Debited events are the
truth, and `rebuild_counters` puts today's settled spend back from them. What to do when the
counters are down (refuse or serve) is the write path's decision, not this room's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from adapters.budget import BudgetCounter, BudgetError, Reservation
from adapters.store import AggregateMissingError, EventStore
from domain.tenancy import Agent

log = logging.getLogger("ainfera.spend")

# How long a cap read from the ledger is trusted; a policy change applies within this time.
AGENT_CAP_TTL_S = 2.0
# How long a counter rebuild waits for the projections to catch up with the store.
COUNTER_REBUILD_WAIT_S = 30.0

# Today's settled spend per agent from the ledger, caught up within `wait` seconds.
LedgerSpend = Callable[[date, float], Awaitable[dict[str, Decimal]]]


class SpendCaps:
    def __init__(self, counters: BudgetCounter, store: EventStore,
                 ledger_spend: LedgerSpend) -> None:
        self.counters = counters
        self._store = store
        self._ledger_spend = ledger_spend
        self._caps: dict[UUID, tuple[float, Decimal | None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._rebuild_lock = asyncio.Lock()

    async def cap_of(self, agent_id: UUID) -> Decimal | None:
        """The agent's daily cap (None: no cap), at most AGENT_CAP_TTL_S old."""
        cached = self._caps.get(agent_id)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        try:
            agent = await asyncio.to_thread(self._store.get, agent_id, Agent)
            cap = agent.daily_cap_usd
        except AggregateMissingError:
            cap = None
        self._caps[agent_id] = (now + AGENT_CAP_TTL_S, cap)
        return cap

    async def reserve(self, agent_id: str, day: date, amount: Decimal, cap: Decimal | None,
                      reservation_id: str, ttl_s: int) -> Reservation:
        return await self.counters.reserve(agent_id, day, amount, cap, reservation_id, ttl_s)

    async def rebuild_counters(self, *, only_if_lost: bool = True,
                               wait: float = COUNTER_REBUILD_WAIT_S) -> None:
        """Today's settled spend per agent, from the ledger, into the counters. Serialised in
        this process, and skipped when another caller already rebuilt them, so a burst of
        callers seeing CountersLost rebuilds once."""
        async with self._rebuild_lock:
            if only_if_lost and not await self.counters.needs_rebuild():
                return
            day = datetime.now(UTC).date()
            totals = await self._ledger_spend(day, wait)
            await self.counters.rebuild(day, totals)
        log.info("spend counters rebuilt from the ledger for %s (%d agents)", day, len(totals))

    def settle_later(self, reservation: Reservation | None, actual: Decimal) -> None:
        """Settles a hold in the background, so a cancelled caller cannot skip it."""
        if reservation is None:
            return
        self._spawn(self._settle(reservation, actual))

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            try:
                await self.counters.release(reservation)
            except BudgetError as exc:
                log.warning("could not release reservation %s: %s",
                            reservation.reservation_id, exc)

    async def _settle(self, reservation: Reservation, actual: Decimal) -> None:
        try:
            await self.counters.settle(reservation, actual)
        except BudgetError as exc:
            # The ledger holds the Debited event; the next rebuild counts it.
            log.warning("could not settle reservation %s (%s): %s",
                        reservation.reservation_id, actual, exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Waits for every settlement in flight (at shutdown, so none is lost)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
