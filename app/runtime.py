"""The runtime: every long-lived resource of one gateway process, opened and closed together.

Built inside the app's lifespan (never at import time) from Settings, so tests get a fresh one
per app and nothing leaks between them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import httpx

from adapters.budget import BudgetCounter, BudgetError, BudgetUnavailable, InProcessBudgetCounter
from adapters.budget_redis import RedisBudgetCounter
from adapters.database import Database
from adapters.idempotency_store import IdempotencyStore
from adapters.instances import GatewayInstances
from adapters.providers import Provider, build_provider
from adapters.providers.http import HTTPSettings, build_http_client
from adapters.store import EventStore, StoreError
from adapters.writer import GroupCommitWriter
from app.bootstrap import open_store
from app.jobs.checkpointer import Ledger, open_ledger
from app.jobs.heartbeat import Heartbeat
from app.jobs.sweeper import sweep_forever
from app.services.inference import InferenceService
from app.services.read_side import (
    ProjectionBehindError,
    ReadSide,
    ReadSideUnavailableError,
    open_read_side,
)
from app.services.readiness import Readiness
from app.services.repair import Owners, read_owners, spend_by_agent
from app.services.router_settings import PreferenceGate
from app.services.spend import COUNTER_REBUILD_WAIT_S, LedgerSpend, SpendCaps
from app.services.tenancy import Principal, authenticate
from app.settings import Settings
from app.telemetry import GatewayMetrics
from domain.catalog import Catalog, default_catalog, load_catalog
from domain.ids import hash_api_key

log = logging.getLogger("ainfera.runtime")

# Bounds the auth cache; past it the cache starts over (a flood of bad keys cannot grow it).
AUTH_CACHE_MAX = 100_000
# A remote projection worker that is down must not hold the gateway's start for long.
REMOTE_REBUILD_WAIT_S = 2.0


@dataclass
class Runtime:
    """Every part is open and wired before the runtime is handed out: nothing here is
    optional, so no handler checks for a part that is not there."""

    settings: Settings
    database: Database
    store: EventStore
    writer: GroupCommitWriter
    catalog: Catalog
    providers: dict[str, Provider]
    spend: SpendCaps
    inference: InferenceService
    idempotency: IdempotencyStore
    read_side: ReadSide
    ledger: Ledger
    metrics: GatewayMetrics
    ready: Readiness
    instance_id: str
    _auth: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)

    async def authenticate(self, presented: str) -> Principal | None:
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

    async def readiness(self) -> dict[str, str]:
        """What `/readyz` reports: "ok" or the problem, per component."""
        return await self.ready.checks()


def ledger_spend(read_side: ReadSide, store: EventStore) -> LedgerSpend:
    """Today's settled spend per agent from usage_daily, once it has caught up with the store:
    what lost counters are rebuilt from."""

    async def spend(day: date, wait: float) -> dict[str, Decimal]:
        try:
            latest = await asyncio.to_thread(store.max_notification_id)
            await read_side.wait_until(["usage_daily"], latest, within=wait)
            return await read_side.read(lambda session: spend_by_agent(session, day))
        except (ProjectionBehindError, ReadSideUnavailableError, StoreError) as exc:
            raise BudgetUnavailable(f"cannot rebuild spend counters: {exc}") from exc

    return spend


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


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    catalog = load_catalog(settings.config_path) if settings.config_path else default_catalog()
    async with AsyncExitStack() as stack:
        opened = await asyncio.to_thread(stack.enter_context, open_store(settings))
        database, store = opened.database, opened.store
        instance_id = f"gw_{uuid.uuid4().hex[:16]}"
        ttl = timedelta(seconds=settings.heartbeat_ttl_s)
        heartbeat_stop = AsyncExitStack()
        # Entered before the writer's, so it runs after the writer has flushed: "stopped" is
        # only said once every call's end is recorded.
        await stack.enter_async_context(heartbeat_stop)
        writer = GroupCommitWriter(store)
        writer.start()
        stack.push_async_callback(asyncio.to_thread, writer.close)
        http = build_http_client(HTTPSettings(read_timeout=settings.upstream_read_timeout_s))
        stack.push_async_callback(http.aclose)
        counters: BudgetCounter = (
            RedisBudgetCounter.from_url(settings.redis_url, prefix=settings.redis_prefix)
            if settings.redis_url
            else InProcessBudgetCounter()
        )
        stack.push_async_callback(counters.aclose)
        idempotency = IdempotencyStore(database)
        stack.callback(idempotency.close)
        # The projector starts here when this process runs it (settings.run_projections).
        read_side = await asyncio.to_thread(open_read_side, database, store,
                                            settings.run_projections)
        stack.push_async_callback(asyncio.to_thread, read_side.close)
        instances = GatewayInstances(database, pool=read_side.pool)
        heartbeat = Heartbeat(instances, instance_id, ttl)
        heartbeat_stop.push_async_callback(heartbeat.stop)
        # The checkpointer signs wherever the projections (the ledger sequencer) run.
        ledger = await asyncio.to_thread(open_ledger, settings, database,
                                         sign=settings.run_projections)
        stack.push_async_callback(asyncio.to_thread, ledger.close)
        spend = SpendCaps(counters, store, ledger_spend(read_side, store))
        # Registered after the parts it uses, so it runs before they close.
        stack.push_async_callback(spend.drain)
        metrics = GatewayMetrics()
        providers = build_providers(catalog, settings.environ, http)
        ready = Readiness(
            store=store, writer=writer, read_side=read_side,
            checkpointer_error=ledger.checkpointer_error, budget=counters,
            counters_required=not settings.budget_fail_open,
            rebuild_counters=spend.rebuild_counters)
        stack.callback(ready.close)
        inference = InferenceService(
            writer=writer, spend=spend, providers=providers, catalog=catalog,
            metrics=metrics,
            preference_gate=PreferenceGate(store, initial=settings.routing_preference_live),
            fail_open=settings.budget_fail_open, instance_id=instance_id,
            attempt_deadline_s=settings.upstream_read_timeout_s)
        runtime = Runtime(
            settings=settings, database=database, store=store, writer=writer, catalog=catalog,
            providers=providers, spend=spend, inference=inference,
            idempotency=idempotency, read_side=read_side, ledger=ledger, metrics=metrics,
            ready=ready, instance_id=instance_id,
        )
        await heartbeat.beat()  # the row exists before the first call is routed
        heartbeat.start()
        try:
            # Local projections are caught up here, so waiting for them is bounded by our own
            # work; a remote worker that is down must not hold the gateway's start for long.
            await spend.rebuild_counters(
                wait=COUNTER_REBUILD_WAIT_S if settings.run_projections else REMOTE_REBUILD_WAIT_S)
        except BudgetError as exc:
            # Fail closed stays in force: reservations refuse until the counters come back.
            log.error("spend counters could not be rebuilt at start: %s", exc)
        legacy_grace = timedelta(seconds=settings.abandon_after_s)

        def owners() -> Owners:
            return read_owners(instances, ttl, legacy_grace, me=instance_id,
                               serving=inference.is_live)

        # Every gateway repairs: the calls of gateways that are gone, and its own leftovers.
        sweeper = asyncio.create_task(sweep_forever(
            read_side, store, writer, owners, max(settings.heartbeat_ttl_s, 1.0)))
        stack.callback(sweeper.cancel)
        yield runtime
