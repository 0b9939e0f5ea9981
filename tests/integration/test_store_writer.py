"""The event store and group commit, one test body per backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.database import Database
from adapters.store import AggregateMissingError, EventStore, StoreUnavailableError
from adapters.writer import GroupCommitWriter, WriteFailedError
from domain.context import audit_context
from domain.inference import Inference
from domain.tenancy import Tenant


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    s = EventStore(Database.from_url(database_url))
    yield s
    s.close()


@pytest.fixture
def writer(store: EventStore) -> Iterator[GroupCommitWriter]:
    w = GroupCommitWriter(store)
    w.start()
    yield w
    w.close()


def new_inference(n: int) -> Inference:
    with audit_context(f"tenant-{n % 3}", f"agent-{n % 5}", f"req-{n}"):
        return Inference(
            api="messages", requested_model="ainfera-inference", router="ainfera-inference",
            alias_hit=None, candidates=[{"model": "m", "quality": "0.8"}], chosen_model="m",
            policy={"min_quality": "0.50"}, ruleset_hash="sha256:x", stream=n % 2 == 0,
            tools=0, request_digest=f"d{n}",
        )


async def one_inference(writer: GroupCommitWriter, n: int) -> UUID:
    """The gateway's write pattern: Routed alone first (write-ahead), then the rest."""
    inference = new_inference(n)
    await writer.save(inference)
    with audit_context(f"tenant-{n % 3}", f"agent-{n % 5}", f"req-{n}"):
        inference.dispatch("anthropic", "claude", f"up-{n}", None)
        inference.record_stream(5, 3, 100)
        inference.complete("succeeded", "end_turn", {"input_tokens": 3, "output_tokens": 4},
                           20, "r")
        inference.debit(Decimal("0.000123"), "v1", None)
    await writer.save(inference)
    return inference.id


async def test_a_thousand_concurrent_inferences_lose_and_duplicate_nothing(
    store: EventStore, writer: GroupCommitWriter
) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(1000):
        queue.put_nowait(n)
    ids: list[UUID] = []

    async def worker() -> None:
        while not queue.empty():
            ids.append(await one_inference(writer, queue.get_nowait()))

    await asyncio.gather(*(worker() for _ in range(32)))
    assert len(set(ids)) == 1000

    notifications = []
    start = 1
    while True:
        page = store.notifications(start, 1000)
        if not page:
            break
        notifications.extend(page)
        start = page[-1].id + 1
    per_aggregate = Counter(n.originator_id for n in notifications)
    assert len(notifications) == 5000
    assert set(per_aggregate) == set(ids)
    assert set(per_aggregate.values()) == {5}
    keys = [(n.originator_id, n.originator_version) for n in notifications]
    assert len(set(keys)) == len(keys)
    sample = store.get(ids[0], Inference)
    assert sample.status == "succeeded"
    assert sample.cost_usd == Decimal("0.000123")
    # Group commit really grouped: fewer transactions than submissions.
    assert writer.stats.submissions == 2000
    assert writer.stats.batches < writer.stats.submissions
    assert writer.stats.largest_batch > 1


async def test_a_committed_batch_wakes_the_event_loop_once(
    writer: GroupCommitWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every caller of a batch is resolved by one call into its loop: a wake-up per caller
    was a syscall per caller made while holding the GIL the loop waits for."""
    loop = asyncio.get_running_loop()
    wakes: list[object] = []
    real = loop.call_soon_threadsafe

    def counting(callback: object, *args: object, **kwargs: object) -> object:
        wakes.append(callback)
        return real(callback, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    inferences = [new_inference(n) for n in range(40, 140)]
    positions = await asyncio.gather(*(writer.save(i) for i in inferences))
    assert all(p > 0 for p in positions)
    assert writer.stats.submissions == 100
    assert writer.stats.batches < 100  # some callers did share a batch
    assert len(wakes) == writer.stats.batches


async def test_a_conflict_fails_only_its_own_caller(
    store: EventStore, writer: GroupCommitWriter
) -> None:
    first = new_inference(1)
    await writer.save(first)
    # A stale copy of the same aggregate: its next event conflicts with the stored version 2.
    stale = store.get(first.id, Inference)
    with audit_context("t", "a", "r"):
        first.dispatch("p", "m", None, None)
        stale.dispatch("p", "m", None, None)
    await writer.save(first)

    others = [new_inference(n) for n in range(10, 20)]
    results = await asyncio.gather(
        writer.save(stale), *(writer.save(o) for o in others), return_exceptions=True
    )
    assert isinstance(results[0], WriteFailedError)
    assert all(isinstance(r, int) and r > 0 for r in results[1:])
    for other in others:
        assert store.get(other.id, Inference).version == 1
    assert store.get(first.id, Inference).version == 2


async def test_a_cancelled_caller_still_gets_its_write(
    store: EventStore, writer: GroupCommitWriter
) -> None:
    inference = new_inference(7)
    task = asyncio.create_task(writer.save(inference))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if store.exists(inference.id):
            break
        await asyncio.sleep(0.01)
    assert store.get(inference.id, Inference).version == 1


def test_blocking_save_and_typed_reads(store: EventStore, writer: GroupCommitWriter) -> None:
    with audit_context("t", None, "r"):
        tenant = Tenant(name="acme")
    assert writer.save_blocking(tenant) > 0
    assert writer.save_blocking(tenant) == 0  # nothing pending, nothing written
    assert store.get(tenant.id, Tenant).name == "acme"
    with pytest.raises(AggregateMissingError):
        store.get(tenant.id, Inference)


def test_a_closed_writer_refuses_clearly(store: EventStore) -> None:
    writer = GroupCommitWriter(store)
    writer.start()
    writer.close()
    with pytest.raises(WriteFailedError, match="closed"):
        writer.save_blocking(new_inference(1))


def test_an_unreachable_postgres_is_a_clear_error() -> None:
    database = Database.from_url("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(StoreUnavailableError, match="unavailable"):
        EventStore(database).ping()
