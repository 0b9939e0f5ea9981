"""The projector survives a PostgreSQL restart without a process restart: its dead connection is
dropped and a new one opened with back-off, the failure shows in its state meanwhile, and it
catches up with what was written after the server came back (issue 10, finding 1)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore, StoreUnavailableError
from domain.routing import ROUTER
from projections.registry import build_projector
from tests.harness.pg_cluster import PgCluster, private_postgres
from tests.mixed_run import CANDIDATES, dump_all, mixed_run, record


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    with private_postgres() as cluster:
        yield cluster


def until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def test_the_projector_catches_up_after_postgresql_restarts(cluster: PgCluster) -> None:
    database = Database.from_url(cluster.url)
    migrate(database)
    store = EventStore(database)
    projector = build_projector(database.connect, database.kind, store, poll_interval=0.1,
                                listen_connect=database.connect,
                                channel=getattr(store.app.recorder, "channel_name", None))
    try:
        run = mixed_run(store)
        projector.start()
        assert projector.wait_for(store.max_notification_id(), timeout=60)

        cluster.stop()  # every session is terminated: the projector's connection is dead
        until(lambda: projector.state().last_error is not None, 60,
              "the projector to notice the outage")
        down = projector.state()
        assert down.running
        assert down.errors_total >= 1
        cluster.start()

        def write_more() -> bool:
            try:
                for n in range(3):
                    record(store, run.tenant_a, run.bot_a, f"after-{n}", router=ROUTER,
                           requested=ROUTER, chosen="gpt-5-mini", candidates=CANDIDATES,
                           cost="0.000010")
            except StoreUnavailableError:
                return False  # the store's pooled connections died too: it opens new ones
            return True

        until(write_more, 60, "the event store to accept writes again")
        end = store.max_notification_id()
        assert projector.wait_for(end, timeout=60), projector.state()
        after = projector.state()
        assert (after.position, after.lag, after.last_error) == (end, 0, None)
        assert after.last_success_at is not None
        assert down.last_error_at is not None
        assert after.last_success_at > down.last_error_at
        # Nothing restarted it: start() ran once, and its one thread ran through the outage.
        assert after.running
    finally:
        projector.stop()
        store.close()
    # What the restarted projector wrote is what a projection from zero writes.
    live = dump_all(database)
    fresh = build_projector(database.connect, database.kind, store := EventStore(database))
    try:
        for name in fresh.names:
            fresh.reset(name)
        fresh.catch_up()
    finally:
        fresh.close()
        store.close()
    assert dump_all(database) == live
    usage = {row[1]: row for row in live["usage_daily"]}
    assert usage[str(run.bot_a)][3] == 8  # 5 calls of the mixed run and 3 after the restart
