"""The runtime: every long-lived resource of one gateway process, opened and closed together.

Built inside the app's lifespan (never at import time) from Settings, so tests get a fresh one
per app and nothing leaks between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from adapters.writer import GroupCommitWriter
from app.settings import Settings
from app.tenancy import Caller, authenticate

log = logging.getLogger("ainfera.runtime")


@dataclass
class Runtime:
    settings: Settings
    database: Database
    store: EventStore
    writer: GroupCommitWriter

    async def authenticate(self, presented: str) -> Caller | None:
        # The store is synchronous; keep its round trip off the event loop.
        return await asyncio.to_thread(authenticate, self.store, presented)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await asyncio.to_thread(self.store.ping)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"unavailable: {exc}"
        if self.settings.redis_url:
            checks["redis"] = await _ping_redis(self.settings.redis_url)
        return checks


async def _ping_redis(url: str) -> str:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
        return "ok"
    except (RedisError, OSError) as exc:
        return f"unavailable: {exc}"
    finally:
        await client.aclose()


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    database = Database.from_url(settings.database_url)
    # Migrations are idempotent and serialised, so every process may run them at start.
    await asyncio.to_thread(migrate, database)
    store = await asyncio.to_thread(EventStore, database)
    writer = GroupCommitWriter(store)
    writer.start()
    runtime = Runtime(settings=settings, database=database, store=store, writer=writer)
    try:
        yield runtime
    finally:
        await asyncio.to_thread(writer.close)
        await asyncio.to_thread(store.close)
