"""Budget counters: one contract run against the in-process and the real-Redis implementation,
then what only Redis can show: many OS processes, losing the keys mid-run, and Redis down.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.budget import (
    BudgetCounter,
    BudgetExceeded,
    BudgetUnavailable,
    CountersLost,
    InProcessBudgetCounter,
    Reservation,
    ReservationEnded,
    counters_expire_at,
)
from adapters.budget_redis import RedisBudgetCounter
from tests.harness.redis_wire import delete_prefix

D = Decimal
AGENT = "agent-1"
TTL = 60


def today() -> date:
    # Keys expire a few days after their day, so tests must count on today, not a fixed date.
    return datetime.now(UTC).date()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def unbuilt(request: pytest.FixtureRequest) -> AsyncIterator[BudgetCounter]:
    """A counter that has never been rebuilt from the ledger, on each backend."""
    if request.param == "memory":
        yield InProcessBudgetCounter()
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    counter = RedisBudgetCounter.from_url(url, prefix=prefix)
    try:
        yield counter
    finally:
        await counter.aclose()
        await delete_prefix(url, prefix)


@pytest.fixture
async def counter(unbuilt: BudgetCounter) -> BudgetCounter:
    await unbuilt.rebuild(today(), {})
    return unbuilt


async def reserve(
    counter: BudgetCounter, rid: str, amount: str, cap: str | None = "10", ttl_s: int = TTL
) -> Reservation:
    return await counter.reserve(
        AGENT, today(), D(amount), None if cap is None else D(cap), rid, ttl_s
    )


async def test_reserve_under_cap_holds_the_amount(counter: BudgetCounter) -> None:
    before = datetime.now(UTC)
    held = await reserve(counter, "r1", "3.5")

    assert (held.agent_id, held.day, held.reservation_id) == (AGENT, today(), "r1")
    assert held.amount == D("3.5")
    assert before + timedelta(seconds=TTL - 5) < held.expires_at
    assert held.expires_at < before + timedelta(seconds=TTL + 5)
    usage = await counter.usage(AGENT, today())
    assert (usage.settled, usage.reserved, usage.used) == (D(0), D("3.5"), D("3.5"))


async def test_reserve_over_cap_is_refused_naming_the_cap(counter: BudgetCounter) -> None:
    await reserve(counter, "r1", "8")

    with pytest.raises(BudgetExceeded, match=r"daily cap of \$10: \$8 already used") as refused:
        await reserve(counter, "r2", "2.01")

    assert (refused.value.cap, refused.value.used, refused.value.requested) == (
        D(10),
        D(8),
        D("2.01"),
    )
    assert refused.value.agent_id == AGENT
    # Exactly reaching the cap is allowed; the refused request held nothing.
    await reserve(counter, "r3", "2")
    assert (await counter.usage(AGENT, today())).reserved == D(10)


async def test_settle_replaces_the_hold_with_the_actual_cost(counter: BudgetCounter) -> None:
    held = await reserve(counter, "r1", "5")

    await counter.settle(held, D("1.25"))

    usage = await counter.usage(AGENT, today())
    assert (usage.settled, usage.reserved) == (D("1.25"), D(0))
    await reserve(counter, "r2", "8.75")
    with pytest.raises(BudgetExceeded):
        await reserve(counter, "r3", "0.000000001")


async def test_settle_is_idempotent(counter: BudgetCounter) -> None:
    held = await reserve(counter, "r1", "5")

    await counter.settle(held, D("2"))
    await counter.settle(held, D("2"))
    await counter.settle(held, D("3"))

    assert (await counter.usage(AGENT, today())).settled == D(2)
    with pytest.raises(ReservationEnded):
        await reserve(counter, "r1", "5")


async def test_release_drops_the_hold_without_cost(counter: BudgetCounter) -> None:
    held = await reserve(counter, "r1", "9")

    await counter.release(held)
    await counter.release(held)
    await counter.settle(held, D("9"))  # after release the reservation has ended: no cost

    usage = await counter.usage(AGENT, today())
    assert (usage.settled, usage.reserved) == (D(0), D(0))
    await reserve(counter, "r2", "10")


async def test_retried_reserve_holds_once(counter: BudgetCounter) -> None:
    first = await reserve(counter, "r1", "6")

    again = await reserve(counter, "r1", "6")

    assert again == first
    assert (await counter.usage(AGENT, today())).reserved == D(6)


async def test_crashed_reservation_expires_and_settles_late(counter: BudgetCounter) -> None:
    crashed = await reserve(counter, "r1", "10", ttl_s=1)
    with pytest.raises(BudgetExceeded):
        await reserve(counter, "r2", "1")

    await asyncio.sleep(1.05)

    assert (await counter.usage(AGENT, today())).reserved == D(0)
    await reserve(counter, "r3", "1")
    # The process that held r1 comes back and settles after expiry: counted, and only once.
    await counter.settle(crashed, D("4"))
    await counter.settle(crashed, D("4"))
    usage = await counter.usage(AGENT, today())
    assert (usage.settled, usage.reserved) == (D(4), D(1))


async def test_rebuild_replaces_settled_totals_and_keeps_live_holds(
    counter: BudgetCounter,
) -> None:
    await counter.settle(await reserve(counter, "a1", "2"), D(2))
    other = await counter.reserve("agent-2", today(), D(3), D(10), "b1", TTL)
    await counter.settle(other, D(3))
    await reserve(counter, "a2", "1")  # in flight during the rebuild

    await counter.rebuild(today(), {AGENT: D("7.5")})

    mine = await counter.usage(AGENT, today())
    assert (mine.settled, mine.reserved) == (D("7.5"), D(1))
    assert (await counter.usage("agent-2", today())).settled == D(0)
    with pytest.raises(BudgetExceeded, match=r"\$8.5 already used"):
        await reserve(counter, "a3", "2")
    await reserve(counter, "a4", "1.5")


async def test_uncapped_spend_is_still_counted(counter: BudgetCounter) -> None:
    held = await reserve(counter, "r1", "123456.789", cap=None)
    assert (await counter.usage(AGENT, today())).reserved == D("123456.789")

    await counter.settle(held, D("100000"))
    await counter.settle(await reserve(counter, "r2", "1", cap=None), D("0.5"))

    usage = await counter.usage(AGENT, today())
    assert (usage.settled, usage.reserved) == (D("100000.5"), D(0))


async def test_unbuilt_counters_refuse_until_rebuilt(unbuilt: BudgetCounter) -> None:
    assert await unbuilt.needs_rebuild()
    assert not await unbuilt.healthy()
    with pytest.raises(CountersLost, match="rebuild"):
        await reserve(unbuilt, "r1", "1")

    await unbuilt.rebuild(today(), {AGENT: D(4)})

    assert not await unbuilt.needs_rebuild()
    assert await unbuilt.healthy()
    assert (await unbuilt.usage(AGENT, today())).settled == D(4)
    await reserve(unbuilt, "r1", "6")


async def test_concurrent_reservations_never_overshoot_the_cap(counter: BudgetCounter) -> None:
    async def attempt(i: int) -> Decimal:
        try:
            return (await reserve(counter, f"r{i}", "0.03", cap="1")).amount
        except BudgetExceeded:
            return D(0)

    held = await asyncio.gather(*(attempt(i) for i in range(200)))

    accepted = [amount for amount in held if amount]
    assert max(D(0), sum(accepted, D(0)) - D(1)) == 0
    assert len(accepted) == 33  # floor(1.00 / 0.03): every reservation that fits was taken
    assert (await counter.usage(AGENT, today())).reserved == D("0.99")


# --- Redis only -------------------------------------------------------------------------------


def _reserve_from_process(
    url: str,
    prefix: str,
    day: str,
    first: int,
    count: int,
    barrier: Any,
    results: Any,
) -> None:
    """Runs in a spawned OS process with its own client: `count` concurrent reservations."""

    async def run() -> list[str]:
        counter = RedisBudgetCounter.from_url(url, prefix=prefix)
        try:
            await counter.usage(AGENT, date.fromisoformat(day))  # connect before the start line
            await asyncio.to_thread(barrier.wait)

            async def attempt(i: int) -> str:
                try:
                    held = await counter.reserve(
                        AGENT, date.fromisoformat(day), D("0.03"), D(1), f"p{i}", TTL
                    )
                except BudgetExceeded:
                    return "0"
                return str(held.amount)

            return list(await asyncio.gather(*(attempt(i) for i in range(first, first + count))))
        finally:
            await counter.aclose()

    results.put(asyncio.run(run()))


@pytest.mark.redis
async def test_four_processes_never_overshoot_the_cap(redis_url: str, redis_prefix: str) -> None:
    counter = RedisBudgetCounter.from_url(redis_url, prefix=redis_prefix)
    await counter.rebuild(today(), {})
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=_reserve_from_process,
            args=(redis_url, redis_prefix, today().isoformat(), n * 50, 50, barrier, results),
        )
        for n in range(4)
    ]
    try:
        for worker in workers:
            worker.start()
        held = [
            D(amount) for _ in workers for amount in await asyncio.to_thread(results.get, True, 60)
        ]
        for worker in workers:
            await asyncio.to_thread(worker.join, 10)
            assert worker.exitcode == 0

        accepted = [amount for amount in held if amount]
        assert len(held) == 200
        assert max(D(0), sum(accepted, D(0)) - D(1)) == 0
        assert len(accepted) == 33
        assert (await counter.usage(AGENT, today())).reserved == D("0.99")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
        results.close()
        await counter.aclose()
        await delete_prefix(redis_url, redis_prefix)


@pytest.mark.redis
async def test_losing_the_keys_mid_run_is_detected_and_the_cap_holds(
    redis_url: str, redis_prefix: str
) -> None:
    counter = RedisBudgetCounter.from_url(redis_url, prefix=redis_prefix)
    ledger: list[Decimal] = []  # the truth: each call's cost is on the ledger before settle

    async def call(rid: str) -> Reservation | None:
        try:
            return await reserve(counter, rid, "0.03", cap="1")
        except BudgetExceeded:
            return None

    async def finish(held: Reservation | None) -> None:
        if held is not None:
            ledger.append(D("0.03"))
            await counter.settle(held, D("0.03"))

    try:
        await counter.rebuild(today(), {})
        first = await asyncio.gather(*(call(f"a{i}") for i in range(20)))
        await asyncio.gather(*(finish(held) for held in first[:10]))
        in_flight = first[10:]

        assert await delete_prefix(redis_url, redis_prefix) > 0

        assert await counter.needs_rebuild()
        assert not await counter.healthy()
        with pytest.raises(CountersLost):
            await call("b0")
        # Calls in flight across the loss finish: they reach the ledger and settle before the
        # rebuild reads it, so the rebuild counts them twice -- the safe direction for a cap.
        await asyncio.gather(*(finish(held) for held in in_flight))
        await counter.rebuild(today(), {AGENT: sum(ledger, D(0))})

        assert not await counter.needs_rebuild()
        assert (await counter.usage(AGENT, today())).settled == D("0.6") + D("0.3")
        second = await asyncio.gather(*(call(f"c{i}") for i in range(200)))
        await asyncio.gather(*(finish(held) for held in second))
        assert len([held for held in second if held]) == 3  # (1 - 0.9) // 0.03
        assert max(D(0), sum(ledger, D(0)) - D(1)) == 0
        assert (await counter.usage(AGENT, today())).settled <= D(1)
    finally:
        await counter.aclose()
        await delete_prefix(redis_url, redis_prefix)


@pytest.mark.redis
async def test_every_key_expires_a_few_days_after_its_day_except_the_epoch(
    redis_url: str, redis_prefix: str
) -> None:
    counter = RedisBudgetCounter.from_url(redis_url, prefix=redis_prefix)
    client = Redis.from_url(redis_url)
    try:
        await counter.rebuild(today(), {AGENT: D(1)})
        await counter.settle(await reserve(counter, "r1", "1"), D(1))
        await counter.release(await reserve(counter, "r2", "1"))
        await reserve(counter, "r3", "1")
        server_now, _ = await client.time()

        expiries = {
            key.decode().removeprefix(redis_prefix): await client.expiretime(key)
            async for key in client.scan_iter(match=f"{redis_prefix}*")
        }

        day = f"budget:{today().isoformat()}"
        assert set(expiries) == {
            "budget:epoch",
            f"{day}:agents",
            f"{day}:settled:{AGENT}",
            f"{day}:ended:{AGENT}",
            f"{day}:res:{AGENT}",
            f"{day}:amt:{AGENT}",
        }
        assert expiries.pop("budget:epoch") == -1  # no expiry: its absence signals a loss
        assert set(expiries.values()) == {int(counters_expire_at(today()).timestamp())}
        assert server_now < int(counters_expire_at(today()).timestamp())
    finally:
        await client.aclose()
        await counter.aclose()
        await delete_prefix(redis_url, redis_prefix)


async def test_redis_down_fails_closed_quickly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    counter = RedisBudgetCounter.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    held = Reservation(AGENT, today(), "r1", D(1), datetime.now(UTC))
    try:
        started = time.monotonic()
        with pytest.raises(BudgetUnavailable, match="could not reserve") as down:
            await reserve(counter, "r1", "1")
        assert time.monotonic() - started < 1.0
        assert down.value.__cause__ is not None

        with pytest.raises(BudgetUnavailable):
            await counter.settle(held, D(1))
        with pytest.raises(BudgetUnavailable):
            await counter.release(held)
        with pytest.raises(BudgetUnavailable):
            await counter.usage(AGENT, today())
        with pytest.raises(BudgetUnavailable):
            await counter.rebuild(today(), {})
        with pytest.raises(BudgetUnavailable):
            await counter.needs_rebuild()
        assert not await counter.healthy()
        assert time.monotonic() - started < 3.0
    finally:
        await counter.aclose()
