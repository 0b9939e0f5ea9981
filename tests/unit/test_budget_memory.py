"""The in-process budget counter on a controlled clock, and the exact money conversions it shares
with the Redis counter. The behaviour both implementations share is tested once, against both,
in tests/integration/test_budget_redis.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.budget import (
    MAX_USD,
    BudgetExceeded,
    CountersLost,
    InProcessBudgetCounter,
    Reservation,
    ReservationEnded,
    counters_expire_at,
    nano_to_usd,
    usd_to_nano,
)
from domain.money import InvalidAmountError

D = Decimal
DAY = date(2025, 3, 14)
AGENT = "agent-1"


class Clock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 14, 12, 0, tzinfo=UTC))


@pytest.fixture
async def counter(clock: Clock) -> InProcessBudgetCounter:
    built = InProcessBudgetCounter(clock)
    await built.rebuild(DAY, {})
    return built


async def test_a_hold_stops_counting_exactly_at_its_expiry(
    counter: InProcessBudgetCounter, clock: Clock
) -> None:
    held = await counter.reserve(AGENT, DAY, D(10), D(10), "r1", 30)
    assert held.expires_at == datetime(2025, 3, 14, 12, 0, 30, tzinfo=UTC)

    clock.advance(29.999)
    with pytest.raises(BudgetExceeded):
        await counter.reserve(AGENT, DAY, D("0.01"), D(10), "r2", 30)
    clock.advance(0.001)

    assert (await counter.usage(AGENT, DAY)).reserved == D(0)
    await counter.reserve(AGENT, DAY, D(10), D(10), "r3", 30)


async def test_holds_round_up_and_caps_round_down_to_the_nano_dollar(
    counter: InProcessBudgetCounter,
) -> None:
    held = await counter.reserve(AGENT, DAY, D("1e-12"), D("0.0000000019"), "r1", 30)
    assert held.amount == D("0.000000001")

    with pytest.raises(BudgetExceeded):
        await counter.reserve(AGENT, DAY, D("1e-12"), D("0.0000000019"), "r2", 30)


def test_money_conversions_are_exact() -> None:
    assert usd_to_nano(D("0.1")) == 100_000_000
    assert usd_to_nano(D("0.0000000011")) == 2
    assert usd_to_nano(D("0.0000000019"), round_up=False) == 1
    # More digits than the default 28-digit context must still round up, not to nearest.
    assert usd_to_nano(D("1.0000000000000000000000000000001")) == 1_000_000_001
    assert usd_to_nano(MAX_USD) == 2**53 - 1
    assert nano_to_usd(usd_to_nano(D("1234.56789"))) == D("1234.56789")


@pytest.mark.parametrize("amount", [D(-1), D("NaN"), D("Infinity"), MAX_USD + D("1e-9"), 0.5])
async def test_amounts_that_cannot_be_counted_exactly_are_refused(
    counter: InProcessBudgetCounter, amount: Decimal
) -> None:
    with pytest.raises(InvalidAmountError):
        await counter.reserve(AGENT, DAY, amount, D(10), "r1", 30)
    with pytest.raises(InvalidAmountError):
        await counter.reserve(AGENT, DAY, D(1), amount, "r1", 30)
    assert (await counter.usage(AGENT, DAY)).used == D(0)


@pytest.mark.parametrize(
    ("agent_id", "reservation_id", "ttl_s"), [("", "r1", 30), (AGENT, "", 30), (AGENT, "r1", 0)]
)
async def test_malformed_reservations_are_refused(
    counter: InProcessBudgetCounter, agent_id: str, reservation_id: str, ttl_s: int
) -> None:
    with pytest.raises(ValueError, match="must be"):
        await counter.reserve(agent_id, DAY, D(1), D(10), reservation_id, ttl_s)


async def test_the_refusal_message_shows_plain_amounts(counter: InProcessBudgetCounter) -> None:
    await counter.settle(await counter.reserve(AGENT, DAY, D(1), None, "r1", 30), D("99.5"))

    with pytest.raises(BudgetExceeded) as refused:
        await counter.reserve(AGENT, DAY, D("0.75"), D(100), "r2", 30)

    assert str(refused.value) == (
        "agent 'agent-1' would exceed its daily cap of $100: "
        "$99.5 already used (settled + reserved) + $0.75 requested"
    )


async def test_each_day_has_its_own_budget_and_a_settle_counts_on_its_reservations_day(
    counter: InProcessBudgetCounter,
) -> None:
    late = await counter.reserve(AGENT, DAY, D(10), D(10), "r1", 30)
    tomorrow = DAY + timedelta(days=1)

    await counter.reserve(AGENT, tomorrow, D(10), D(10), "r2", 30)
    await counter.settle(late, D(3))

    assert (await counter.usage(AGENT, DAY)).settled == D(3)
    assert (await counter.usage(AGENT, tomorrow)).settled == D(0)


async def test_past_days_are_forgotten_after_retention(
    counter: InProcessBudgetCounter, clock: Clock
) -> None:
    await counter.settle(await counter.reserve(AGENT, DAY, D(1), None, "r1", 30), D(1))

    clock.now = counters_expire_at(DAY).timestamp()
    await counter.reserve(AGENT, DAY + timedelta(days=3), D(1), None, "r2", 30)

    assert (await counter.usage(AGENT, DAY)).settled == D(0)


async def test_settles_before_the_first_rebuild_are_added_to_the_ledger_totals(
    clock: Clock,
) -> None:
    fresh = InProcessBudgetCounter(clock)
    assert await fresh.needs_rebuild()
    with pytest.raises(CountersLost):
        await fresh.reserve(AGENT, DAY, D(1), D(10), "r1", 30)
    # A call reserved before a restart finishes after it: counted, then kept by the rebuild.
    held = Reservation(AGENT, DAY, "r0", D(1), datetime.fromtimestamp(clock(), UTC))
    await fresh.settle(held, D(2))

    await fresh.rebuild(DAY, {AGENT: D(5)})
    assert (await fresh.usage(AGENT, DAY)).settled == D(7)
    await fresh.rebuild(DAY, {AGENT: D(5)})
    assert (await fresh.usage(AGENT, DAY)).settled == D(5)


async def test_a_released_id_cannot_be_reserved_again(counter: InProcessBudgetCounter) -> None:
    held = await counter.reserve(AGENT, DAY, D(1), D(10), "r1", 30)
    await counter.release(held)

    with pytest.raises(ReservationEnded, match="r1"):
        await counter.reserve(AGENT, DAY, D(1), D(10), "r1", 30)
