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
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from adapters.budget import BudgetCounter, BudgetError, Reservation
from adapters.store import AggregateMissingError, EventStore
from domain.tenancy import Agent

log = logging.getLogger("ainfera.spend")

# How long a cap read from the ledger is trusted; a policy change applies within this time.
AGENT_CAP_TTL_S = 2.0
# Settles per pipeline: bounds one flush's reply buffer and how long Redis runs it at once.
SETTLE_BATCH_MAX = 256
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
        self._settles: list[tuple[Reservation, Decimal]] = []
        self._flusher: asyncio.Task[None] | None = None
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
        """Settles a hold in the background, so a cancelled caller cannot skip it.

        Queued, not a task each: one flusher sends whatever was queued in one round trip
        (counters.settle_many), so a busy loop pays for a settle pipeline per turn rather
        than a task and a round trip per call."""
        if reservation is None:
            return
        self._settles.append((reservation, actual))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            try:
                await self.counters.release(reservation)
            except BudgetError as exc:
                log.warning("could not release reservation %s: %s",
                            reservation.reservation_id, exc)

    async def _flush(self) -> None:
        # Started from settle_later, it runs on the next loop turn: by then every settle of
        # this turn is queued. Settles queued while a batch is in flight go in the next one.
        try:
            while self._settles:
                batch = self._settles[:SETTLE_BATCH_MAX]
                del self._settles[:SETTLE_BATCH_MAX]
                try:
                    outcomes = await self.counters.settle_many(batch)
                except Exception as exc:  # a bug in the counter must not strand the queue
                    outcomes = [exc] * len(batch)
                for (reservation, actual), error in zip(batch, outcomes, strict=True):
                    if error is not None:
                        # The ledger holds the Debited event; the next rebuild counts it.
                        log.warning("could not settle reservation %s (%s): %s",
                                    reservation.reservation_id, actual, error)
        finally:
            self._flusher = None

    async def drain(self) -> None:
        """Waits until every queued settlement is sent (at shutdown, so none is lost)."""
        while self._flusher is not None:
            # wait(), not await: a drain cancelled at shutdown must not cancel the flusher.
            await asyncio.wait({self._flusher})
