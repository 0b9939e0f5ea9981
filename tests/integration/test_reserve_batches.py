"""Auto-pipelined reserves on a real Redis: reserves made while another is in flight go out
together in one pipeline, each its own script, and each caller gets its own answer. Round trips
are counted by the client's own connections (see test_spend_settles), not the shared server's
statistics, which other test runs move at the same time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.budget import (
    BudgetExceeded,
    BudgetUnavailable,
    CountersLost,
    Reservation,
    ReservationEnded,
)
from adapters.budget_redis import RESERVE_BATCH_MAX, RedisBudgetCounter
from domain.money import InvalidAmountError
from tests.harness.redis_wire import (
    TTL,
    CountingConnection,
    HookedConnection,
    counting_counter,
    today,
)

pytestmark = pytest.mark.redis

D = Decimal
@pytest.fixture
async def counter(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisBudgetCounter]:
    try:
        async with counting_counter(redis_url, redis_prefix, HookedConnection) as built:
            yield built
    finally:
        HookedConnection.hook = None
        HookedConnection.hook_before_send = False


async def in_one_batch(counter: RedisBudgetCounter,
                       calls: list[Coroutine[Any, Any, Reservation]]) -> list[Any]:
    """Runs `calls` concurrently behind a reserve already in flight, so that all of them wait
    for the same batch; answers (or errors) in order, the lead's left out."""
    lead = counter.reserve("lead", today(), D(1), None, "lead", TTL)
    answers = await asyncio.gather(lead, *calls, return_exceptions=True)
    assert isinstance(answers[0], Reservation), answers[0]
    return answers[1:]


async def test_concurrent_reserves_go_out_in_a_few_round_trips(
        counter: RedisBudgetCounter) -> None:
    count = 200
    amounts = [D(i + 1) / 1000 for i in range(count)]  # each caller its own amount
    before = CountingConnection.evalsha_writes

    held = await asyncio.gather(*(
        counter.reserve(f"agent-{i % 3}", today(), amounts[i], None, f"r{i}", TTL)
        for i in range(count)))
    writes = CountingConnection.evalsha_writes - before

    # The first goes alone (nothing else was in flight), the other 199 in one pipeline; one
    # round trip each made 200.
    assert writes <= 3, writes
    assert [(r.reservation_id, r.amount) for r in held] == [
        (f"r{i}", amounts[i]) for i in range(count)]
    for agent in range(3):
        usage = await counter.usage(f"agent-{agent}", today())
        assert (usage.settled, usage.reserved) == (D(0), sum(amounts[agent::3], D(0)))


async def test_more_reserves_than_a_batch_holds_take_one_pipeline_per_batch(
        counter: RedisBudgetCounter) -> None:
    count = RESERVE_BATCH_MAX + 44
    before = CountingConnection.evalsha_writes

    held = await in_one_batch(counter, [
        counter.reserve("agent-1", today(), D("0.01"), None, f"r{i}", TTL)
        for i in range(count)])
    writes = CountingConnection.evalsha_writes - before

    assert writes == 3, writes  # the lead, then two pipelines
    assert [r.reservation_id for r in held] == [f"r{i}" for i in range(count)]
    assert (await counter.usage("agent-1", today())).reserved == D("0.01") * count


async def test_in_one_batch_a_caller_over_its_cap_is_refused_and_the_others_hold(
        counter: RedisBudgetCounter) -> None:
    await counter.reserve("agent-full", today(), D("0.9"), D(1), "before", TTL)
    before = CountingConnection.evalsha_writes

    answers = await in_one_batch(counter, [
        counter.reserve("agent-a", today(), D("0.5"), D(1), "a1", TTL),
        counter.reserve("agent-full", today(), D("0.2"), D(1), "full1", TTL),
        counter.reserve("agent-b", today(), D("0.7"), None, "b1", TTL),
        counter.reserve("agent-full", today(), D("0.1"), D(1), "full2", TTL),
        counter.reserve("agent-full", today(), D("0.000000001"), D(1), "full3", TTL),
    ])

    assert CountingConnection.evalsha_writes - before == 2  # the lead, then the batch
    a1, full1, b1, full2, full3 = answers
    assert isinstance(a1, Reservation)
    assert a1.amount == D("0.5")
    assert isinstance(b1, Reservation)
    assert b1.amount == D("0.7")
    assert isinstance(full1, BudgetExceeded)
    assert (full1.agent_id, full1.cap, full1.used, full1.requested) == (
        "agent-full", D(1), D("0.9"), D("0.2"))
    # Scripts run in the order they were queued: 0.1 fits exactly, then nothing more does.
    assert isinstance(full2, Reservation)
    assert full2.reservation_id == "full2"
    assert isinstance(full3, BudgetExceeded)
    assert (full3.used, full3.requested) == (D(1), D("0.000000001"))
    assert (await counter.usage("agent-full", today())).reserved == D(1)


async def test_reserves_racing_for_the_last_of_a_cap_never_overshoot_it(
        counter: RedisBudgetCounter) -> None:
    await counter.reserve("agent-1", today(), D("0.7"), D(1), "earlier", TTL)

    answers = await in_one_batch(counter, [
        counter.reserve("agent-1", today(), D("0.03"), D(1), f"r{i}", TTL) for i in range(100)])

    held = [a for a in answers if isinstance(a, Reservation)]
    refused = [a for a in answers if isinstance(a, BudgetExceeded)]
    assert len(held) + len(refused) == 100
    assert len(held) == 10  # floor(0.30 / 0.03)
    assert {r.reservation_id for r in held} == {f"r{i}" for i in range(10)}
    assert all(r.used == D("1.0") for r in refused)
    usage = await counter.usage("agent-1", today())
    assert usage.reserved == D("0.7") + sum((r.amount for r in held), D(0))
    assert usage.reserved <= D(1)


async def test_a_bad_argument_fails_only_its_caller(
        counter: RedisBudgetCounter, redis_url: str, redis_prefix: str) -> None:
    # This agent's settled counter is of the wrong type: its script fails inside Redis.
    client = Redis.from_url(redis_url)
    try:
        await client.rpush(f"{redis_prefix}budget:{today().isoformat()}:settled:agent-broken",
                           "not a counter")
    finally:
        await client.aclose()
    before = CountingConnection.evalsha_writes

    answers = await in_one_batch(counter, [
        counter.reserve("agent-1", today(), D(1), D(10), "ok1", TTL),
        counter.reserve("agent-1", today(), D(1), D(10), "bad-ttl", 0),
        counter.reserve("", today(), D(1), D(10), "no-agent", TTL),
        counter.reserve("agent-1", today(), D(-1), D(10), "negative", TTL),
        counter.reserve("agent-broken", today(), D(1), D(10), "broken", TTL),
        counter.reserve("agent-1", today(), D(2), D(10), "ok2", TTL),
    ])

    assert CountingConnection.evalsha_writes - before == 2
    ok1, bad_ttl, no_agent, negative, broken, ok2 = answers
    assert isinstance(ok1, Reservation)
    assert ok1.reservation_id == "ok1"
    assert isinstance(ok2, Reservation)
    assert ok2.reservation_id == "ok2"
    assert isinstance(bad_ttl, ValueError)
    assert "ttl_s" in str(bad_ttl)
    assert isinstance(no_agent, ValueError)
    assert "agent_id" in str(no_agent)
    assert isinstance(negative, InvalidAmountError)
    assert isinstance(broken, BudgetUnavailable)
    assert "WRONGTYPE" in str(broken)
    # The refused arguments never reached Redis: nothing held under their ids.
    assert (await counter.usage("agent-1", today())).reserved == D(3)
    assert (await counter.reserve("agent-1", today(), D(1), D(10), "bad-ttl", TTL)).amount == 1


async def test_lost_counters_refuse_every_caller_of_the_batch(
        counter: RedisBudgetCounter, redis_url: str, redis_prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        await client.delete(f"{redis_prefix}budget:epoch")
    finally:
        await client.aclose()

    lead = counter.reserve("lead", today(), D(1), None, "lead", TTL)
    answers = await asyncio.gather(lead, *(
        counter.reserve(f"agent-{i % 4}", today(), D(1), D(100), f"r{i}", TTL)
        for i in range(50)), return_exceptions=True)

    assert all(isinstance(a, CountersLost) for a in answers), answers
    assert len({id(a) for a in answers}) == len(answers)  # each caller its own error
    await counter.rebuild(today(), {})
    for agent in range(4):
        assert (await counter.usage(f"agent-{agent}", today())).reserved == D(0)


async def test_callers_cancelled_while_queued_hold_nothing(counter: RedisBudgetCounter) -> None:
    before = CountingConnection.evalsha_writes
    lead = asyncio.create_task(counter.reserve("lead", today(), D(1), None, "lead", TTL))
    queued = [asyncio.create_task(counter.reserve("agent-1", today(), D(1), None, f"q{i}", TTL))
              for i in range(20)]
    await asyncio.sleep(0)  # every task has queued its reserve; the flusher has not run yet

    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)
    await lead

    assert all(task.cancelled() for task in queued)
    assert CountingConnection.evalsha_writes - before == 1  # only the lead's was sent
    assert (await counter.usage("agent-1", today())).reserved == D(0)
    # Never sent, so never held nor ended: the same ids can still be reserved.
    assert (await counter.reserve("agent-1", today(), D(1), None, "q0", TTL)).amount == 1


async def test_callers_cancelled_while_their_batch_is_in_flight_leave_no_hold(
        counter: RedisBudgetCounter) -> None:
    callers: list[asyncio.Task[Reservation]] = []
    kept = [f"k{i}" for i in range(5)]

    def cancel_some(scripts: int) -> bool:
        if scripts == 1:
            return False  # the lead
        # The batch is on the wire: these callers' holds are being placed in Redis.
        for task in callers[:10]:
            task.cancel()
        return True

    HookedConnection.hook = cancel_some
    lead = asyncio.create_task(counter.reserve("lead", today(), D(1), None, "lead", TTL))
    callers += [asyncio.create_task(
        counter.reserve("agent-1", today(), D(1), D(100), f"c{i}", TTL)) for i in range(10)]
    callers += [asyncio.create_task(
        counter.reserve("agent-1", today(), D(2), D(100), rid, TTL)) for rid in kept]
    answers = await asyncio.gather(lead, *callers, return_exceptions=True)

    assert HookedConnection.hook is None  # the batch was sent
    assert all(task.cancelled() for task in callers[:10])
    assert [a.reservation_id for a in answers[11:]] == kept
    # The cancelled callers' holds were placed, then released in the background.
    deadline = time.monotonic() + 30
    while (await counter.usage("agent-1", today())).reserved != D(10):
        assert time.monotonic() < deadline, await counter.usage("agent-1", today())
        await asyncio.sleep(0.05)
    with pytest.raises(ReservationEnded):
        await counter.reserve("agent-1", today(), D(1), D(100), "c0", TTL)
