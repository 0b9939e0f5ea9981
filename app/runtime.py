"""The runtime: every long-lived resource of one gateway process, opened and closed together.

Built inside the app's lifespan (never at import time) from Settings, so tests get a fresh one
per app and nothing leaks between them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx

from adapters.budget import (
    BudgetCounter,
    BudgetError,
    BudgetUnavailable,
    InProcessBudgetCounter,
    Reservation,
)
from adapters.budget_redis import RedisBudgetCounter
from adapters.database import Database
from adapters.idempotency_store import IdempotencyStore
from adapters.migrations import migrate
from adapters.providers import Provider, build_provider
from adapters.providers.http import build_http_client
from adapters.store import AggregateMissingError, EventStore, StoreError
from adapters.writer import GroupCommitWriter, WriteFailedError
from app.jobs.checkpointer import Ledger, open_ledger
from app.services.read_side import ProjectionBehindError, ReadSide, open_read_side
from app.services.repair import abandon, abandon_cutoff, open_inferences, spend_by_agent
from app.services.tenancy import Caller, authenticate
from app.settings import Settings
from app.telemetry import GatewayMetrics
from domain.catalog import Catalog, default_catalog, load_catalog
from domain.ids import hash_api_key
from domain.tenancy import Agent

log = logging.getLogger("ainfera.runtime")

# How long a cap read from the ledger is trusted; a policy change applies within this time.
AGENT_CAP_TTL_S = 2.0
# Bounds the auth cache; past it the cache starts over (a flood of bad keys cannot grow it).
AUTH_CACHE_MAX = 100_000
# How long a counter rebuild or repair waits for the projections to catch up with the store.
COUNTER_REBUILD_WAIT_S = 30.0
SWEEP_INTERVAL_S = 60.0
REMOTE_REBUILD_WAIT_S = 2.0



@dataclass
class Runtime:
    settings: Settings
    database: Database
    store: EventStore
    writer: GroupCommitWriter
    catalog: Catalog
    http: httpx.AsyncClient
    providers: dict[str, Provider]
    budget: BudgetCounter
    idempotency: IdempotencyStore
    read_side: ReadSide | None = None
    ledger: Ledger | None = None
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    _caps: dict[UUID, tuple[float, Decimal | None]] = field(default_factory=dict)
    _auth: dict[str, tuple[float, Caller | None]] = field(default_factory=dict)
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _rebuild_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def authenticate(self, presented: str) -> Caller | None:
        """The caller a key speaks for. Answers (accepted or refused) are kept for
        `auth_cache_ttl_s`, so a revocation takes effect within that time; the key itself is
        never kept, only its hash."""
        ttl = self.settings.auth_cache_ttl_s
        digest = hash_api_key(presented)
        now = time.monotonic()
        cached = self._auth.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        # The store is synchronous; keep its round trip off the event loop.
        caller = await asyncio.to_thread(authenticate, self.store, presented)
        if ttl > 0:
            if len(self._auth) >= AUTH_CACHE_MAX:
                self._auth.clear()
            self._auth[digest] = (now + ttl, caller)
        return caller

    async def agent_cap(self, agent_id: UUID) -> Decimal | None:
        cached = self._caps.get(agent_id)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        try:
            agent = await asyncio.to_thread(self.store.get, agent_id, Agent)
            cap = agent.daily_cap_usd
        except AggregateMissingError:
            cap = None
        self._caps[agent_id] = (now + AGENT_CAP_TTL_S, cap)
        return cap

    async def rebuild_counters(self, *, only_if_lost: bool = True,
                               wait: float = COUNTER_REBUILD_WAIT_S) -> None:
        """Today's settled spend per agent, from the ledger (usage_daily, caught up to the
        store first), into the counters. Serialised in this process, and skipped when another
        caller already rebuilt them, so a burst of callers seeing CountersLost rebuilds once."""
        async with self._rebuild_lock:
            if only_if_lost and not await self.budget.needs_rebuild():
                return
            day = datetime.now(UTC).date()
            totals = await self._ledger_spend(day, wait)
            await self.budget.rebuild(day, totals)
        log.info("spend counters rebuilt from the ledger for %s (%d agents)", day, len(totals))

    async def _ledger_spend(self, day: date, wait: float) -> dict[str, Decimal]:
        if self.read_side is None:
            return {}
        latest = await asyncio.to_thread(self.store.max_notification_id)
        try:
            await self.read_side.wait_until(["usage_daily"], latest, within=wait)
        except ProjectionBehindError as exc:
            raise BudgetUnavailable(f"cannot rebuild spend counters: {exc}") from exc
        return await self.read_side.read(lambda session: spend_by_agent(session, day))

    async def repair_abandoned(self, grace: timedelta) -> int:
        """Closes inferences routed more than `grace` ago that never completed."""
        if self.read_side is None:
            return 0
        latest = await asyncio.to_thread(self.store.max_notification_id)
        await self.read_side.wait_until(["agent_metrics"], latest, within=COUNTER_REBUILD_WAIT_S)
        cutoff = abandon_cutoff(grace)
        ids = await self.read_side.read(lambda session: open_inferences(session, cutoff))
        return await asyncio.to_thread(abandon, self.store, self.writer.save_blocking, ids)

    def settle_later(self, reservation: Reservation | None, actual: Decimal) -> None:
        """Settles a hold in the background, so a cancelled caller cannot skip it."""
        if reservation is None:
            return
        self._spawn(self._settle(reservation, actual))

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            try:
                await self.budget.release(reservation)
            except BudgetError as exc:
                log.warning("could not release reservation %s: %s",
                            reservation.reservation_id, exc)

    async def _settle(self, reservation: Reservation, actual: Decimal) -> None:
        try:
            await self.budget.settle(reservation, actual)
        except BudgetError as exc:
            # The ledger holds the Debited event; the next rebuild counts it.
            log.warning("could not settle reservation %s (%s): %s",
                        reservation.reservation_id, actual, exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await asyncio.to_thread(self.store.ping)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"unavailable: {exc}"
        if self.settings.redis_url:
            checks["redis"] = "ok" if await self.budget.healthy() else "unavailable"
        return checks


def build_providers(catalog: Catalog, environ: Mapping[str, str],
                    client: httpx.AsyncClient) -> dict[str, Provider]:
    """Providers whose API key is set; a model whose provider has none is skipped at dispatch
    (and recorded as such), so a partial configuration still serves what it can."""
    providers: dict[str, Provider] = {}
    for provider in catalog.providers:
        key = environ.get(provider.api_key_env, "")
        if not key:
            log.warning("provider %s: %s is not set; its models will not be dispatched",
                        provider.name, provider.api_key_env)
            continue
        providers[provider.name] = build_provider(
            provider.name, provider.kind, provider.base_url, key, client)
    return providers


async def _sweep_abandoned(runtime: Runtime) -> None:
    """At start, then every SWEEP_INTERVAL_S: inferences whose process died are closed."""
    grace = timedelta(seconds=runtime.settings.abandon_after_s)
    while True:
        try:
            await runtime.repair_abandoned(grace)
        except (ProjectionBehindError, StoreError, WriteFailedError) as exc:
            log.error("could not repair abandoned inferences: %s", exc)
        await asyncio.sleep(SWEEP_INTERVAL_S)


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    catalog = load_catalog(settings.config_path) if settings.config_path else default_catalog()
    database = Database.from_url(settings.database_url)
    # Migrations are idempotent and serialised, so every process may run them at start.
    await asyncio.to_thread(migrate, database)
    store = await asyncio.to_thread(EventStore, database)
    writer = GroupCommitWriter(store)
    writer.start()
    http = build_http_client()
    budget: BudgetCounter = (
        RedisBudgetCounter.from_url(settings.redis_url, prefix=settings.redis_prefix)
        if settings.redis_url
        else InProcessBudgetCounter()
    )
    runtime = Runtime(
        settings=settings, database=database, store=store, writer=writer, catalog=catalog,
        http=http, providers=build_providers(catalog, settings.environ, http), budget=budget,
        idempotency=IdempotencyStore(database),
    )
    # Projection runners start here when this process runs them (settings.run_projections).
    read_side = await asyncio.to_thread(open_read_side, database, store, settings.run_projections)
    runtime.read_side = read_side
    sweeper: asyncio.Task[None] | None = None
    try:
        # The checkpointer signs wherever the projections (the ledger sequencer) run.
        runtime.ledger = await asyncio.to_thread(
            open_ledger, settings, database, sign=settings.run_projections)
        try:
            # Local projections are caught up here, so waiting for them is bounded by our own
            # work; a remote worker that is down must not hold the gateway's start for long.
            await runtime.rebuild_counters(
                wait=COUNTER_REBUILD_WAIT_S if settings.run_projections else REMOTE_REBUILD_WAIT_S)
        except BudgetError as exc:
            # Fail closed stays in force: reservations refuse until the counters come back.
            log.error("spend counters could not be rebuilt at start: %s", exc)
        if settings.run_projections:
            sweeper = asyncio.create_task(_sweep_abandoned(runtime))
        yield runtime
    finally:
        if sweeper is not None:
            sweeper.cancel()
        await runtime.drain()
        if runtime.ledger is not None:
            await asyncio.to_thread(runtime.ledger.close)
        await asyncio.to_thread(read_side.close)
        await http.aclose()
        await budget.aclose()
        runtime.idempotency.close()
        await asyncio.to_thread(writer.close)
        await asyncio.to_thread(store.close)
