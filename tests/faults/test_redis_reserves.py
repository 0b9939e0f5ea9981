"""Batched reserves across a Redis that loses its script cache or dies mid-batch, on the tier's
own redis-server (never the shared one): each caller gets its own reservation or its own error,
and nothing a dead batch held counts against a cap once the counters are rebuilt."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine
from decimal import Decimal
from typing import Any

import pytest
import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.budget import BudgetError, BudgetUnavailable, Reservation
from adapters.budget_redis import RedisBudgetCounter
from tests.faults.servers import RedisServer
from tests.harness.redis_wire import TTL, HookedConnection, today

D = Decimal
@pytest.fixture
async def server(fault_redis: RedisServer) -> AsyncIterator[RedisServer]:
    yield fault_redis
    if fault_redis.proc is None:  # a test that stopped it failed before starting it again
        fault_redis.start()


def hooked_counter(url: str, timeout_s: float) -> RedisBudgetCounter:
    """RedisBudgetCounter.from_url's pool (timeouts, one retry on a dropped connection), on
    connections that count EVALSHA writes and can act once a batch is on the wire."""
    pool = BlockingConnectionPool.from_url(
        url, connection_class=HookedConnection, max_connections=32, timeout=timeout_s,
        socket_connect_timeout=timeout_s, socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))
    return RedisBudgetCounter(Redis(connection_pool=pool), prefix=f"s{uuid.uuid4().hex[:8]}:",
                              owns_client=True)


async def behind_a_lead(counter: RedisBudgetCounter,
                        calls: list[Coroutine[Any, Any, Reservation]]) -> list[Any]:
    """`calls` queued behind one reserve in flight, so they go out as one batch."""
    lead = counter.reserve("lead", today(), D(1), None, f"lead-{uuid.uuid4().hex}", TTL)
    return list(await asyncio.gather(lead, *calls, return_exceptions=True))[1:]


async def test_a_batch_lands_after_the_script_cache_is_flushed(server: RedisServer) -> None:
    counter = hooked_counter(server.url, 2.0)
    flusher = redis.Redis.from_url(server.url)  # blocking: it flushes from inside a write
    try:
        await counter.rebuild(today(), {})
        first = await behind_a_lead(counter, [
            counter.reserve("agent-1", today(), D(1), D(100), f"a{i}", TTL) for i in range(20)])
        assert all(isinstance(r, Reservation) for r in first), first

        def flush_before_the_batch(scripts: int) -> bool:
            if scripts == 1:
                return False  # the lead, which redis-py's script object reloads itself
            flusher.script_flush()
            return True

        HookedConnection.hook, HookedConnection.hook_before_send = flush_before_the_batch, True
        before = HookedConnection.batch_writes
        second = await behind_a_lead(counter, [
            counter.reserve("agent-1", today(), D(1), D(100), f"b{i}", TTL) for i in range(20)])

        assert HookedConnection.hook is None
        assert [r.reservation_id for r in second] == [f"b{i}" for i in range(20)]
        # Refused with NOSCRIPT, then sent again after one SCRIPT LOAD.
        assert HookedConnection.batch_writes - before == 2
        assert (await counter.usage("agent-1", today())).reserved == D(40)
        assert (await counter.usage("lead", today())).reserved == D(2)
    finally:
        HookedConnection.hook = None
        HookedConnection.hook_before_send = False
        flusher.close()
        await counter.aclose()


async def test_redis_killed_mid_batch_fails_each_caller_and_leaks_no_hold(
        server: RedisServer) -> None:
    counter = hooked_counter(server.url, 0.5)
    pauser = redis.Redis.from_url(server.url)  # blocking: it acts from inside a write
    try:
        await counter.rebuild(today(), {})
        await counter.reserve("agent-1", today(), D(3), D(10), "before", TTL)

        def kill_once_the_batch_is_written(scripts: int) -> bool:
            if scripts == 1:
                return False  # the lead
            # Scripts wait while writes are paused, so none can answer before the kill, which
            # comes as soon as the batch is on the wire.
            pauser.client_pause(30_000, all=False)
            asyncio.get_running_loop().call_soon(server.stop)
            return True

        HookedConnection.hook, HookedConnection.hook_before_send = (
            kill_once_the_batch_is_written, True)
        answers = await behind_a_lead(counter, [
            counter.reserve("agent-1", today(), D(1), D(10), f"r{i}", TTL) for i in range(30)])

        assert HookedConnection.hook is None  # the batch was on the wire
        assert all(isinstance(a, BudgetUnavailable) for a in answers), answers
        assert len({id(a) for a in answers}) == len(answers)  # each caller its own error

        await asyncio.to_thread(server.start)
        assert await counter.needs_rebuild()
        await counter.rebuild(today(), {"agent-1": D(2)})  # what the ledger says was spent

        assert (await counter.usage("agent-1", today())).reserved == D(0)
        # The whole rest of the cap can be held again: nothing from the dead batch counts.
        held = await behind_a_lead(counter, [
            counter.reserve("agent-1", today(), D(1), D(10), f"after{i}", TTL)
            for i in range(9)])
        outcomes = [type(h).__name__ for h in held]
        assert outcomes == ["Reservation"] * 8 + ["BudgetExceeded"], held
        assert isinstance(held[-1], BudgetError)
    finally:
        HookedConnection.hook = None
        HookedConnection.hook_before_send = False
        pauser.close()
        await counter.aclose()
