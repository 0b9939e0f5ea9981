"""What the Redis spend-counter tests share: today's UTC day, a reservation TTL, and connection
classes that count (and hook into) the round trips carrying scripts, so a test can prove how
many round trips a batch of reserves or settles took and act at the moment one is on the wire.
They wrap redis-py's real connection to a real server: nothing of our storage is faked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from redis.asyncio import BlockingConnectionPool, Connection, Redis

from adapters.budget_redis import RedisBudgetCounter

TTL = 60


def today() -> date:
    return datetime.now(UTC).date()


class CountingConnection(Connection):
    """Counts the writes that carry an EVALSHA: one per round trip of scripts."""

    evalsha_writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        chunks = [command] if isinstance(command, bytes | str | memoryview) else command
        if any(b"EVALSHA" in bytes(chunk) for chunk in chunks):
            CountingConnection.evalsha_writes += 1
        await super().send_packed_command(command, check_health)


class HookedConnection(CountingConnection):
    """Counts the writes that carry more than one EVALSHA (a batch), and calls `hook` with
    the number of EVALSHAs of each write until it returns True: right after the write (the
    scripts will run in Redis; their callers have no answer yet), or right before it when
    `hook_before_send`."""

    batch_writes = 0
    hook: ClassVar[Callable[[int], bool] | None] = None
    hook_before_send: ClassVar[bool] = False

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        chunks = [command] if isinstance(command, bytes | str | memoryview) else command
        scripts = sum(bytes(chunk).count(b"EVALSHA") for chunk in chunks)
        if scripts > 1:
            HookedConnection.batch_writes += 1
        if HookedConnection.hook_before_send:
            self._call_hook(scripts)
        await super().send_packed_command(command, check_health)
        if not HookedConnection.hook_before_send:
            self._call_hook(scripts)

    @staticmethod
    def _call_hook(scripts: int) -> None:
        hook = HookedConnection.hook
        if hook is not None and scripts and hook(scripts):
            HookedConnection.hook = None
            HookedConnection.hook_before_send = False


async def delete_prefix(url: str, prefix: str) -> int:
    """Deletes this test's keys only: other tests share the server, so never FLUSHDB."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        return int(await client.delete(*keys)) if keys else 0
    finally:
        await client.aclose()


@asynccontextmanager
async def counting_counter(url: str, prefix: str,
                           connection_class: type[Connection] = CountingConnection,
                           ) -> AsyncIterator[RedisBudgetCounter]:
    """A counter built for today over connections of `connection_class`, its keys deleted
    after."""
    pool = BlockingConnectionPool.from_url(url, connection_class=connection_class,
                                           max_connections=8, timeout=5)
    built = RedisBudgetCounter(Redis(connection_pool=pool), prefix=prefix, owns_client=True)
    await built.rebuild(today(), {})
    try:
        yield built
    finally:
        await built.aclose()
        await delete_prefix(url, prefix)
