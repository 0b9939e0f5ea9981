"""Per-agent daily spend caps: the budget counter port and its in-process implementation.

Before a call goes upstream the gateway reserves its worst-case cost against the agent's daily
cap; when the call ends it settles the reservation to the actual cost (or releases it). The
counters are a fast, shared *cache* of the ledger: the ledger's `Debited` events are the truth,
and `rebuild()` reloads a day's settled totals from them after a restart or a loss of Redis.
This module must never decide policy (fail-open, which cap applies): it counts and refuses.

Amounts are counted as integer nano-dollars (1e-9 USD) so that every backend, including Lua in
Redis, does exact integer arithmetic. Holds and spend round *up* to the nano-dollar and caps
round *down*, so rounding can only make a cap stricter, never looser. Every amount and cap must
be below 2**53 nano-dollars (about $9.0M), the largest integer a Lua number holds exactly.

Errors::

    BudgetError
     +-- BudgetExceeded      the reservation would take the agent over its daily cap
     +-- BudgetUnavailable   the counters cannot answer (fail closed: refuse the call)
     +-- CountersLost        the counters were lost or never built: rebuild from the ledger
     +-- ReservationEnded    a reservation id that was already settled or released is reused
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Protocol

from domain.money import InvalidAmountError

NANO = Decimal("1e-9")
MAX_NANO = 2**53 - 1
MAX_USD = Decimal(MAX_NANO).scaleb(-9)
# Counters outlive their UTC day by this much so late settles and `usage` of recent days work.
RETENTION_AFTER_DAY = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A hold on part of an agent's daily budget, ended by `settle` or `release`.

    `amount` is what is held (the request rounded up to the nano-dollar); `expires_at` is UTC by
    the counter's own clock, after which the hold stops counting (its process presumably died).
    """

    agent_id: str
    day: date
    reservation_id: str
    amount: Decimal
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Usage:
    """An agent's day: settled spend plus the live (unexpired) reservations."""

    settled: Decimal
    reserved: Decimal

    @property
    def used(self) -> Decimal:
        return self.settled + self.reserved


class BudgetCounter(Protocol):
    """The port the gateway calls on every inference; each method is atomic."""

    async def reserve(
        self,
        agent_id: str,
        day: date,
        amount: Decimal,
        cap: Decimal | None,
        reservation_id: str,
        ttl_s: int,
    ) -> Reservation:
        """Holds `amount`, or raises BudgetExceeded if settled + live holds + amount > cap.

        With `cap` None the hold is still recorded, so uncapped spend is counted too. Reusing a
        live reservation id returns that hold unchanged (a retry must not hold twice).
        """
        ...

    async def settle(self, reservation: Reservation, actual: Decimal) -> None:
        """Ends the hold and adds `actual` to the day's settled total, once per reservation id.

        Works after the hold expired; a second settle (or one after release) changes nothing.
        """
        ...

    async def settle_many(
        self, settles: Sequence[tuple[Reservation, Decimal]]
    ) -> list[Exception | None]:
        """Settles each (reservation, actual) as `settle` would, each atomic on its own.

        Never raises for one settle's failure: the answer holds, in order, None for each
        settle that landed and the error (as `settle` would raise it) for each that did not,
        so one bad settle cannot cost the others theirs.
        """
        ...

    async def release(self, reservation: Reservation) -> None:
        """Ends the hold without cost; later settles of the same id change nothing."""
        ...

    async def usage(self, agent_id: str, day: date) -> Usage: ...

    async def rebuild(self, day: date, settled_by_agent: dict[str, Decimal]) -> None:
        """Replaces the day's settled totals with the ledger's and marks the counters built.

        Agents absent from `settled_by_agent` are reset to zero. Live reservations are kept:
        they are calls in flight, not yet in the ledger, and still count until they end. If the
        counters had been lost (`needs_rebuild()`), whatever was settled since the loss is added
        to the ledger's totals instead of overwritten: those calls were in flight across the loss
        and may be missing from the ledger read, so counting some twice is the safe error.
        """
        ...

    async def needs_rebuild(self) -> bool:
        """True when the counters were lost or never built; `reserve` raises CountersLost."""
        ...

    async def healthy(self) -> bool:
        """True when the counters answer and do not need a rebuild; never raises."""
        ...

    async def aclose(self) -> None: ...


def usd_to_nano(amount: Decimal, *, round_up: bool = True) -> int:
    """Converts dollars to integer nano-dollars, refusing what cannot be counted exactly."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidAmountError(f"budget amounts are finite Decimals, not {amount!r}")
    if amount < 0:
        raise InvalidAmountError(f"budget amounts cannot be negative: {amount}")
    if amount > MAX_USD:
        raise InvalidAmountError(f"budget amounts must not exceed ${MAX_USD}: {amount}")
    # quantize rounds from the exact operand, unlike scaling first under the context precision.
    quantized = amount.quantize(NANO, rounding=ROUND_CEILING if round_up else ROUND_FLOOR)
    return int(quantized.scaleb(9))


def nano_to_usd(nano: int) -> Decimal:
    return Decimal(nano).scaleb(-9)


def counters_expire_at(day: date) -> datetime:
    """When a day's counters may be dropped: a few days after the UTC day ends."""
    return datetime.combine(day + timedelta(days=1), dtime(0, tzinfo=UTC)) + RETENTION_AFTER_DAY


def check_reservation_args(agent_id: str, reservation_id: str, ttl_s: int) -> None:
    if not agent_id or not reservation_id:
        raise ValueError("agent_id and reservation_id must be non-empty")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
        raise ValueError(f"ttl_s must be a whole number of seconds >= 1, not {ttl_s!r}")


@dataclass
class _AgentDay:
    settled: int = 0
    # reservation id -> (nano-dollars held, expiry in epoch seconds)
    live: dict[str, tuple[int, float]] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)

    def prune(self, now: float) -> None:
        for rid in [rid for rid, (_, exp) in self.live.items() if exp <= now]:
            del self.live[rid]

    def reserved(self) -> int:
        return sum(nano for nano, _ in self.live.values())


class InProcessBudgetCounter:
    """Counters in this process's memory, for a single gateway process (no Redis configured).

    Correct only within one process and one event loop: the lock serialises the check-and-hold.
    The counters die with the process, so a new one needs `rebuild()` from the ledger first.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        # The clock (epoch seconds) is injectable so expiry can be tested without sleeping.
        self._clock = clock
        self._lock = asyncio.Lock()
        self._days: dict[tuple[date, str], _AgentDay] = {}
        self._built = False
        self._next_sweep = 0.0

    def _agent_day(self, agent_id: str, day: date) -> _AgentDay:
        return self._days.setdefault((day, agent_id), _AgentDay())

    def _drop_expired_days(self, now: float) -> None:
        # Past days are dropped as Redis expires their keys; a sweep an hour keeps it cheap.
        if now < self._next_sweep:
            return
        self._next_sweep = now + 3600
        moment = datetime.fromtimestamp(now, UTC)
        for key in [k for k in self._days if counters_expire_at(k[0]) <= moment]:
            del self._days[key]

    async def reserve(
        self,
        agent_id: str,
        day: date,
        amount: Decimal,
        cap: Decimal | None,
        reservation_id: str,
        ttl_s: int,
    ) -> Reservation:
        check_reservation_args(agent_id, reservation_id, ttl_s)
        nano = usd_to_nano(amount)
        cap_nano = None if cap is None else usd_to_nano(cap, round_up=False)
        async with self._lock:
            if not self._built:
                raise CountersLost(
                    "in-process budget counters are not built yet: rebuild() them from the ledger"
                )
            now = self._clock()
            self._drop_expired_days(now)
            counts = self._agent_day(agent_id, day)
            counts.prune(now)
            if reservation_id in counts.ended:
                raise ReservationEnded(reservation_id)
            if reservation_id in counts.live:
                held, expires = counts.live[reservation_id]
                return _reservation(agent_id, day, reservation_id, held, expires)
            used = counts.settled + counts.reserved()
            if cap_nano is not None and cap is not None and used + nano > cap_nano:
                raise BudgetExceeded(agent_id, cap, nano_to_usd(used), nano_to_usd(nano))
            expires = now + ttl_s
            counts.live[reservation_id] = (nano, expires)
            return _reservation(agent_id, day, reservation_id, nano, expires)

    async def settle(self, reservation: Reservation, actual: Decimal) -> None:
        nano = usd_to_nano(actual)
        async with self._lock:
            counts = self._agent_day(reservation.agent_id, reservation.day)
            if reservation.reservation_id in counts.ended:
                return
            counts.live.pop(reservation.reservation_id, None)
            counts.ended.add(reservation.reservation_id)
            counts.settled += nano

    async def settle_many(
        self, settles: Sequence[tuple[Reservation, Decimal]]
    ) -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        for reservation, actual in settles:
            try:
                await self.settle(reservation, actual)
            except Exception as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    async def release(self, reservation: Reservation) -> None:
        async with self._lock:
            counts = self._agent_day(reservation.agent_id, reservation.day)
            counts.live.pop(reservation.reservation_id, None)
            counts.ended.add(reservation.reservation_id)

    async def usage(self, agent_id: str, day: date) -> Usage:
        async with self._lock:
            counts = self._days.get((day, agent_id))
            if counts is None:
                return Usage(settled=Decimal(0), reserved=Decimal(0))
            counts.prune(self._clock())
            return Usage(nano_to_usd(counts.settled), nano_to_usd(counts.reserved()))

    async def rebuild(self, day: date, settled_by_agent: dict[str, Decimal]) -> None:
        if not all(settled_by_agent):
            raise ValueError("agent ids must be non-empty")
        totals = {agent: usd_to_nano(amount) for agent, amount in settled_by_agent.items()}
        async with self._lock:
            self._next_sweep = 0.0
            self._drop_expired_days(self._clock())
            for (counted_day, agent), counts in self._days.items():
                if counted_day == day and agent not in totals and self._built:
                    counts.settled = 0
            for agent, nano in totals.items():
                counts = self._agent_day(agent, day)
                counts.settled = nano if self._built else counts.settled + nano
            self._built = True

    async def needs_rebuild(self) -> bool:
        return not self._built

    async def healthy(self) -> bool:
        return self._built

    async def aclose(self) -> None:
        return None


def _reservation(agent_id: str, day: date, rid: str, nano: int, expires: float) -> Reservation:
    return Reservation(
        agent_id=agent_id,
        day=day,
        reservation_id=rid,
        amount=nano_to_usd(nano),
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def _show(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


class BudgetError(Exception):
    """Base of the budget counters' errors."""


class BudgetExceeded(BudgetError):
    """The reservation would take the agent's settled + reserved spend over its daily cap."""

    def __init__(self, agent_id: str, cap: Decimal, used: Decimal, requested: Decimal) -> None:
        self.agent_id = agent_id
        self.cap = cap
        self.used = used
        self.requested = requested
        super().__init__(
            f"agent {agent_id!r} would exceed its daily cap of ${_show(cap)}: "
            f"${_show(used)} already used (settled + reserved) + ${_show(requested)} requested"
        )


class BudgetUnavailable(BudgetError):
    """The counters cannot answer; the gateway refuses the call unless configured fail-open."""


class CountersLost(BudgetError):
    """The counters were lost (Redis flushed or restarted) or never built: rebuild() them."""


class ReservationEnded(BudgetError):
    """A reservation id that was already settled or released was reserved again."""

    def __init__(self, reservation_id: str) -> None:
        self.reservation_id = reservation_id
        super().__init__(f"reservation {reservation_id!r} was already settled or released")
