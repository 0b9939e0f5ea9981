"""Background settles across a Redis that loses its script cache or restarts, on the tier's own
redis-server (never the shared one): a settle either lands or is logged, and the counters are
rebuilt from the ledger as after any loss."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.budget import Reservation
from adapters.budget_redis import RedisBudgetCounter
from app.services.spend import SpendCaps
from tests.faults.servers import RedisServer
from tests.harness.redis_wire import TTL, today

D = Decimal
@pytest.fixture
async def server(fault_redis: RedisServer) -> AsyncIterator[RedisServer]:
    yield fault_redis
    if fault_redis.proc is None:  # a test that stopped it failed before starting it again
        fault_redis.start()


def spend_caps(counter: RedisBudgetCounter, ledger: list[Decimal]) -> SpendCaps:
    async def ledger_spend(day: date, wait: float) -> dict[str, Decimal]:
        return {"agent-1": sum(ledger, D(0))}

    store: Any = None  # only read for caps, which these tests do not ask for
    return SpendCaps(counter, store, ledger_spend)


async def hold(counter: RedisBudgetCounter, prefix: str, count: int) -> list[Reservation]:
    return [await counter.reserve("agent-1", today(), D(1), None, f"{prefix}{i}", TTL)
            for i in range(count)]


async def test_settles_land_after_the_script_cache_is_flushed(server: RedisServer) -> None:
    counter = RedisBudgetCounter.from_url(server.url, prefix=f"s{uuid.uuid4().hex[:8]}:")
    caps = spend_caps(counter, [])
    client = Redis.from_url(server.url)
    try:
        await counter.rebuild(today(), {})
        held = await hold(counter, "r", 30)
        caps.settle_later(held[0], D("0.5"))
        await caps.drain()  # the settle script is now in the server's cache
        await client.script_flush()

        for reservation in held[1:]:
            caps.settle_later(reservation, D("0.5"))
        await caps.drain()

        assert (await counter.usage("agent-1", today())).settled == D(15)
    finally:
        await client.aclose()
        await counter.aclose()


async def test_settles_during_a_restart_are_logged_then_rebuilt_from_the_ledger(
        server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    counter = RedisBudgetCounter.from_url(server.url, prefix=f"s{uuid.uuid4().hex[:8]}:",
                                          timeout_s=0.5)
    ledger: list[Decimal] = []  # each call's cost is on the ledger before it settles
    caps = spend_caps(counter, ledger)
    try:
        await caps.rebuild_counters(only_if_lost=False)
        before = await hold(counter, "a", 10)
        during = await hold(counter, "b", 10)
        for reservation in before:
            ledger.append(D("0.25"))
            caps.settle_later(reservation, D("0.25"))
        await caps.drain()

        await asyncio.to_thread(server.stop)  # a crash without persistence: every key is lost
        with caplog.at_level(logging.WARNING, logger="ainfera.spend"):
            for reservation in during:
                ledger.append(D("0.5"))
                caps.settle_later(reservation, D("0.5"))
            await caps.drain()
        failed = {record.args[0] for record in caplog.records  # type: ignore[index]
                  if record.getMessage().startswith("could not settle")}
        assert failed == {r.reservation_id for r in during}

        await asyncio.to_thread(server.start)
        assert await counter.needs_rebuild()
        await caps.rebuild_counters()
        assert (await counter.usage("agent-1", today())).settled == D("7.5")

        # After the restart the server has no scripts: the next settles load theirs and land.
        after = await hold(counter, "c", 5)
        for reservation in after:
            caps.settle_later(reservation, D(1))
        await caps.drain()
        usage = await counter.usage("agent-1", today())
        assert (usage.settled, usage.reserved) == (D("12.5"), D(0))
    finally:
        await counter.aclose()
