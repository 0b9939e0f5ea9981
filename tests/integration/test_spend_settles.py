"""Settles in the background on a real Redis: queued by SpendCaps.settle_later, sent together
by one flusher in one pipeline, each its own script, and all of them sent before drain()
returns. Round trips are counted by the client's own connections, not the shared server's
statistics, which other test runs move at the same time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.budget_redis import RedisBudgetCounter
from app.services.spend import SETTLE_BATCH_MAX, SpendCaps
from tests.harness.redis_wire import TTL, CountingConnection, counting_counter, today

pytestmark = pytest.mark.redis

D = Decimal
async def _no_ledger(day: date, wait: float) -> dict[str, Decimal]:
    return {}


def spend_caps(counter: RedisBudgetCounter) -> SpendCaps:
    # The store is only read for caps (cap_of), which these tests do not ask for.
    store: Any = None
    return SpendCaps(counter, store, _no_ledger)


@pytest.fixture
async def counter(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisBudgetCounter]:
    async with counting_counter(redis_url, redis_prefix) as built:
        yield built


async def test_settles_queued_in_one_turn_go_in_one_round_trip_and_all_land(
        counter: RedisBudgetCounter) -> None:
    caps = spend_caps(counter)
    count = SETTLE_BATCH_MAX + 44  # more than one pipeline holds
    held = await asyncio.gather(*(
        counter.reserve(f"agent-{i % 3}", today(), D("0.5"), None, f"r{i}", TTL)
        for i in range(count)))
    costs = [D(i % 7) / 100 for i in range(count)]

    before = CountingConnection.evalsha_writes
    for reservation, cost in zip(held, costs, strict=True):
        caps.settle_later(reservation, cost)
    await caps.drain()
    writes = CountingConnection.evalsha_writes - before

    # One pipeline per SETTLE_BATCH_MAX settles; a task and a round trip each made `count`.
    assert writes == 2, writes
    for agent in range(3):
        usage = await counter.usage(f"agent-{agent}", today())
        expected = sum(costs[agent::3], D(0))
        assert (usage.settled, usage.reserved) == (expected, D(0))


async def test_one_failing_settle_costs_only_its_own(
        counter: RedisBudgetCounter, redis_prefix: str, redis_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caps = spend_caps(counter)
    good = [await counter.reserve("agent-ok", today(), D(1), None, f"g{i}", TTL)
            for i in range(10)]
    broken = await counter.reserve("agent-broken", today(), D(1), None, "broken", TTL)
    bad_amount = await counter.reserve("agent-ok", today(), D(1), None, "bad-amount", TTL)
    # The broken agent's settled counter is of the wrong type: its script fails in Redis.
    client = Redis.from_url(redis_url)
    try:
        await client.rpush(f"{redis_prefix}budget:{today().isoformat()}:settled:agent-broken",
                           "not a counter")
    finally:
        await client.aclose()

    with caplog.at_level(logging.WARNING, logger="ainfera.spend"):
        caps.settle_later(good[0], D("0.25"))
        caps.settle_later(broken, D("0.25"))
        caps.settle_later(bad_amount, D("-1"))  # refused before it reaches Redis
        for reservation in good[1:]:
            caps.settle_later(reservation, D("0.25"))
        await caps.drain()

    assert (await counter.usage("agent-ok", today())).settled == D("2.5")
    failed = {record.args[0] for record in caplog.records  # type: ignore[index]
              if record.getMessage().startswith("could not settle")}
    assert failed == {"broken", "bad-amount"}
    assert "WRONGTYPE" in caplog.text


async def test_a_cancelled_caller_still_settles(counter: RedisBudgetCounter) -> None:
    caps = spend_caps(counter)
    waiting = asyncio.Semaphore(0)

    async def call(i: int) -> None:
        held = await counter.reserve("agent-1", today(), D(1), None, f"c{i}", TTL)
        caps.settle_later(held, D("0.1"))
        waiting.release()
        await asyncio.sleep(3600)  # the client goes away while the call still waits

    callers = [asyncio.create_task(call(i)) for i in range(20)]
    for _ in callers:
        await waiting.acquire()
    for caller in callers:
        caller.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    assert all(caller.cancelled() for caller in callers)

    # A drain cancelled at shutdown does not cancel the flusher either.
    draining = asyncio.create_task(caps.drain())
    await asyncio.sleep(0)
    draining.cancel()
    await caps.drain()

    usage = await counter.usage("agent-1", today())
    assert (usage.settled, usage.reserved) == (D(2), D(0))


async def test_settles_queued_while_a_batch_is_in_flight_are_sent_before_drain_returns(
        counter: RedisBudgetCounter) -> None:
    caps = spend_caps(counter)

    async def caller(i: int) -> None:
        for n in range(15):
            held = await counter.reserve(f"agent-{i % 4}", today(), D(1), None, f"{i}-{n}",
                                         TTL)
            caps.settle_later(held, D("0.01"))

    await asyncio.gather(*(caller(i) for i in range(16)))
    await caps.drain()

    for agent in range(4):
        usage = await counter.usage(f"agent-{agent}", today())
        assert (usage.settled, usage.reserved) == (D("0.6"), D(0))
