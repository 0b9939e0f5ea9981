"""Every part that holds a PostgreSQL connection fails fast while the server is down and works
again, the same object, once it is back: the event store (and so the writer), the read side's
pool and the idempotency store (issue 10: reconnect everywhere, fail fast on a store outage).
The server is the fault tier's own; each test stops and restarts it. (Redis, whose client
already did both, is covered by the outage scenarios through the gateway.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from adapters.database import Database
from adapters.idempotency_store import IdempotencyError, IdempotencyStore
from adapters.migrations import migrate
from adapters.store import EventStore, StoreUnavailableError
from adapters.writer import GroupCommitWriter, WriteFailedError
from app.services import tenancy
from app.services.read_side import ReadSide, ReadSideUnavailableError
from tests.harness.pg_cluster import PgCluster

T = TypeVar("T")

# A caller during an outage must be refused within a couple of seconds (the connect timeout is
# 2 s, and the wait is a timer, not work a loaded machine slows down); before, the event store
# took 7 s and the pools 30 s.
REFUSED_WITHIN_S = 4.5
# After the server is back, the same object must work again within this.
RECOVERED_WITHIN_S = 15.0


def timed(work: Callable[[], T]) -> tuple[float, T | BaseException]:
    began = time.monotonic()
    try:
        return time.monotonic() - began, work()
    except BaseException as exc:  # the caller asserts on which
        return time.monotonic() - began, exc


def until_it_works(work: Callable[[], T]) -> float:
    """Seconds until `work` succeeds, trying every 0.2 s up to RECOVERED_WITHIN_S."""
    began = time.monotonic()
    while True:
        try:
            work()
            return time.monotonic() - began
        except Exception:
            if time.monotonic() - began > RECOVERED_WITHIN_S:
                raise
            time.sleep(0.2)


def restart(cluster: PgCluster) -> None:
    cluster.stop()
    cluster.start()


@pytest.fixture
def database(fault_database: str) -> Database:
    db = Database.from_url(fault_database)
    migrate(db)
    return db


def test_event_store_and_writer(database: Database, fault_postgres: PgCluster) -> None:
    store = EventStore(database)
    writer = GroupCommitWriter(store)
    writer.start()
    try:
        tenancy.create_tenant(store, "before")
        restart(fault_postgres)
        # Every pooled connection died with the server: the first call after it is back must
        # not be handed one of them.
        tenancy.create_tenant(store, "right after a restart")
        fault_postgres.stop()
        elapsed, outcome = timed(store.max_notification_id)
        assert isinstance(outcome, StoreUnavailableError), outcome
        assert elapsed < REFUSED_WITHIN_S
        # Known down: the next callers are refused at once, not after another timeout each.
        elapsed, outcome = timed(store.max_notification_id)
        assert isinstance(outcome, StoreUnavailableError)
        assert elapsed < 1.0, elapsed
        assert store.breaker.outage is not None
        elapsed, outcome = timed(lambda: tenancy.create_tenant(store, "during"))
        assert isinstance(outcome, StoreUnavailableError | WriteFailedError), outcome
        assert elapsed < REFUSED_WITHIN_S

        fault_postgres.start()
        until_it_works(store.max_notification_id)
        assert store.breaker.outage is None
        tenancy.create_tenant(store, "after")  # the same store object, new connections
        with pytest.raises(tenancy.AlreadyExistsError):
            tenancy.create_tenant(store, "before")  # what was there before is still there
    finally:
        writer.close()
        store.close()


def test_writer_batches_fail_fast_then_land(database: Database,
                                            fault_postgres: PgCluster) -> None:
    store = EventStore(database)
    writer = GroupCommitWriter(store)
    writer.start()
    from domain.context import audit_context
    from domain.tenancy import Tenant

    def new_tenant(name: str) -> Tenant:
        with audit_context("t", None, "req"):
            return Tenant(name=name)

    try:
        fault_postgres.stop()
        elapsed, outcome = timed(lambda: writer.save_blocking(new_tenant("lost")))
        assert isinstance(outcome, WriteFailedError), outcome
        assert elapsed < REFUSED_WITHIN_S
        fault_postgres.start()
        until_it_works(store.max_notification_id)
        assert writer.save_blocking(new_tenant("landed")) > 0
    finally:
        writer.close()
        store.close()


def test_read_side_pool(database: Database, fault_postgres: PgCluster) -> None:
    store = EventStore(database)
    read_side = ReadSide(database, store, pool=database.pool("test-read", max_size=2))
    try:
        assert set(read_side.positions()) >= {"usage_daily"}
        restart(fault_postgres)
        read_side.positions()  # not handed a connection that died with the server
        fault_postgres.stop()
        elapsed, outcome = timed(read_side.positions)
        assert isinstance(outcome, ReadSideUnavailableError), outcome
        assert elapsed < REFUSED_WITHIN_S
        fault_postgres.start()
        until_it_works(read_side.positions)
    finally:
        read_side.close()
        store.close()


def test_idempotency_store(database: Database, fault_postgres: PgCluster) -> None:
    idem = IdempotencyStore(database)
    try:
        assert idem.claim("tenant", "k1", "d") is None
        restart(fault_postgres)
        assert idem.read("tenant", "k1") is not None
        fault_postgres.stop()
        elapsed, outcome = timed(lambda: idem.read("tenant", "k1"))
        assert isinstance(outcome, IdempotencyError), outcome
        assert elapsed < REFUSED_WITHIN_S
        fault_postgres.start()
        until_it_works(lambda: idem.read("tenant", "k1"))
        record = idem.read("tenant", "k1")
        assert record is not None
        assert record.state == "pending"
    finally:
        idem.close()


def test_writes_of_calls_in_flight_wait_for_the_store(database: Database,
                                                      fault_postgres: PgCluster) -> None:
    """A call's closing events (keep_trying) are held while the store is down and recorded,
    in order, once it is back; the caller is not held meanwhile."""
    import asyncio
    from decimal import Decimal

    from domain.context import audit_context
    from domain.inference import Inference

    store = EventStore(database)
    writer = GroupCommitWriter(store)
    writer.start()

    def routed() -> Inference:
        with audit_context("t", "a", "req"):
            return Inference(api="messages", requested_model="m", router="direct",
                             alias_hit=None, candidates=[], chosen_model="m", policy={},
                             ruleset_hash="h", stream=True, tools=0, request_digest="d")

    async def scenario() -> list[str]:
        inference = routed()
        await writer.save(inference)  # Routed, while the store is up
        fault_postgres.stop()
        with audit_context("t", "a", "req"):
            inference.dispatch("p", "m", None, None)
        dispatched = writer.submit(inference, keep_trying=True)
        with audit_context("t", "a", "req"):
            inference.record_stream(5, 3, 100)
            inference.complete("succeeded", "end_turn", None, 20, None)
            inference.debit(Decimal("0.000001"), "v", None)
        closed = writer.submit(inference, keep_trying=True)
        deadline = time.monotonic() + RECOVERED_WITHIN_S
        while writer.backlog_size < 2:  # each is tried (and refused) first
            assert time.monotonic() < deadline, writer.backlog_size
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # and stays held, retried, while the store is down
        assert not dispatched.done()
        assert not closed.done()
        await asyncio.to_thread(fault_postgres.start)
        await asyncio.wait_for(asyncio.gather(dispatched, closed), RECOVERED_WITHIN_S)
        assert writer.backlog_size == 0
        return [type(e).__name__ for e in store.events_of(inference.id)]

    try:
        assert asyncio.run(scenario()) == ["Routed", "Dispatched", "Streamed", "Completed",
                                           "Debited"]
    finally:
        writer.close()
        store.close()
