"""How often the running projector makes a pass on PostgreSQL, where every commit NOTIFYs it:
a trickle of commits costs a pass per coalescing window rather than one per commit, the read
models stay well under a second behind, and a reader waiting for a position is served at once
rather than after the window."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from app.services.read_side import ReadSide
from domain.routing import ROUTER
from projections import projector as projector_module
from projections.projector import Projector
from projections.registry import build_projector
from tests.mixed_run import CANDIDATES, Run, record


@pytest.fixture
def database(postgres_url: str) -> Database:
    """PostgreSQL only: the wake-ups under test are its NOTIFYs."""
    database = Database.from_url(postgres_url)
    migrate(database)
    return database


def listening(database: Database, store: EventStore) -> Projector:
    """The projector as `ainfera serve` runs it, but with a poll so slow that every pass in
    these tests comes from a NOTIFY."""
    return build_projector(database.connect, database.kind, store, poll_interval=60.0,
                           listen_connect=database.connect,
                           channel=getattr(store.app.recorder, "channel_name", None))


def record_one(store: EventStore, run: Run, n: int) -> None:
    record(store, run.tenant_a, run.bot_a, f"trickle-{n}", router=ROUTER, requested=ROUTER,
           chosen="gpt-5-mini", candidates=CANDIDATES, cost="0.001")


def caught_up_after(live: Projector, end: int, patience: float = 30.0) -> float:
    """Seconds until every model applied `end`, watched without waking the projector."""
    began = time.monotonic()
    while live.position() < end:
        assert time.monotonic() - began < patience, live.state()
        time.sleep(0.002)
    return time.monotonic() - began


def test_a_trickle_of_commits_costs_a_pass_per_window_not_per_commit(
        database: Database, store: EventStore, run: Run) -> None:
    live = listening(database, store)
    live.start()
    try:
        assert live.wait_for(store.max_notification_id(), timeout=30)
        time.sleep(0.5)  # the listener is up and has relayed the catch-up's NOTIFYs
        before = live.state().batches_total
        began = time.monotonic()
        lags: list[float] = []
        for n in range(40):
            record_one(store, run, n)  # two commits: Routed, then the rest of the call
            if n % 8 == 7:
                lags.append(caught_up_after(live, store.max_notification_id()))
            time.sleep(0.01)
        elapsed = time.monotonic() - began
        lags.append(caught_up_after(live, store.max_notification_id()))
        passes = live.state().batches_total - before
    finally:
        live.stop()
    # 80 commits: one pass each (or one per 50 ms of NOTIFY debounce) before the window.
    assert passes <= elapsed / projector_module.COALESCE_S + 2, (passes, elapsed)
    assert max(lags) < 1.0, lags


def test_a_waiting_reader_does_not_wait_for_the_window(
        database: Database, store: EventStore, run: Run,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(projector_module, "COALESCE_S", 60.0)
    live = listening(database, store)
    live.start()
    try:
        assert live.wait_for(store.max_notification_id(), timeout=30)
        record_one(store, run, 0)
        time.sleep(0.3)  # its NOTIFY arrives: the thread is now inside the 60 s window
        waited = time.monotonic()
        assert live.wait_for(store.max_notification_id(), timeout=30)
        assert time.monotonic() - waited < 20
    finally:
        live.stop()


def test_without_a_reader_the_window_holds_a_pass_back(
        database: Database, store: EventStore, run: Run,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The other side of the test above: a NOTIFY alone waits for the window to end.
    monkeypatch.setattr(projector_module, "COALESCE_S", 1.5)
    live = listening(database, store)
    live.start()
    try:
        assert live.wait_for(store.max_notification_id(), timeout=30)
        time.sleep(0.5)
        record_one(store, run, 0)
        written = time.monotonic()
        end = store.max_notification_id()
        waited: Any = caught_up_after(live, end)
        assert time.monotonic() - written >= 1.0, waited
    finally:
        live.stop()


def test_a_reader_in_another_process_cuts_the_window_over_postgres(
        database: Database, store: EventStore, run: Run,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`ainfera serve` runs the projector in a child process: a consistent read in the gateway
    cannot call its `nudge`, so it asks over the `_wanted` channel (ReadSide.wait_until)."""
    monkeypatch.setattr(projector_module, "COALESCE_S", 60.0)
    live = listening(database, store)
    live.start()
    reader = ReadSide(database, store, projector=None, pool=database.pool("reader", 2))
    try:
        assert live.wait_for(store.max_notification_id(), timeout=30)
        time.sleep(0.5)  # the listener is up
        record_one(store, run, 0)
        time.sleep(0.3)  # its NOTIFY arrives: the thread is now inside the 60 s window
        end = store.max_notification_id()
        began = time.monotonic()
        asyncio.run(reader.wait_until(live.names, end, within=20.0))
        assert time.monotonic() - began < 15
    finally:
        reader.close()
        live.stop()
