"""The PostgreSQL insert (adapters/pg_recorder.py) keeps every guarantee of the library's:
the EXCLUSIVE table lock with its lock_timeout, the NOTIFY, one event per version, ids in
insert order; in one round trip, and on a database whose tables an earlier version created."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from adapters.database import Database
from adapters.pg_recorder import FailFastApplicationRecorder
from adapters.store import EventStore, LedgerApplication, StoreConflictError
from domain.context import audit_context
from domain.inference import Inference
from tests.integration.test_store_writer import new_inference

TABLE = "ainfera_events"


@pytest.fixture
def database(postgres_url: str) -> Database:
    return Database.from_url(postgres_url)


@pytest.fixture
def store(database: Database) -> Iterator[EventStore]:
    s = EventStore(database)
    yield s
    s.close()


@pytest.fixture
def other(database: Database) -> Iterator[psycopg.Connection[Any]]:
    """A second session on the same schema, as another process would have."""
    conn = psycopg.connect(database.pg_conninfo, autocommit=True,
                           options=f"-c search_path={database.pg_schema}")
    yield conn
    conn.close()


def four_events(n: int) -> list[Any]:
    inference = new_inference(n)
    with audit_context("t", "a", f"r{n}"):
        inference.dispatch("anthropic", "claude", None, None)
        inference.record_stream(5, 3, 100)
        inference.complete("succeeded", "end_turn", {"input_tokens": 3}, 20, "r")
    return list(inference.collect_events())


def recorder_of(store: EventStore) -> FailFastApplicationRecorder:
    recorder = store.app.recorder
    assert isinstance(recorder, FailFastApplicationRecorder)
    return recorder


def test_a_multi_event_commit_gets_its_ids_in_insert_order(store: EventStore) -> None:
    store.save_events(four_events(0))
    events = four_events(1) + four_events(2)
    recordings = store.save_events(events)

    ids = [r.notification.id for r in recordings]
    assert ids == list(range(ids[0], ids[0] + 8))
    assert [(r.domain_event.originator_id, r.domain_event.originator_version)
            for r in recordings] == [(e.originator_id, e.originator_version) for e in events]
    stored = store.notifications(ids[0], 8)
    assert [(n.id, n.originator_id, n.originator_version) for n in stored] == [
        (i, e.originator_id, e.originator_version) for i, e in zip(ids, events, strict=True)]


def test_a_version_already_taken_is_a_conflict_and_nothing_of_the_commit_lands(
    store: EventStore,
) -> None:
    first = new_inference(1)
    store.save_events(first.collect_events())
    stale = store.get(first.id, Inference)
    with audit_context("t", "a", "r"):
        first.dispatch("p", "m", None, None)
        stale.dispatch("p", "m", None, None)
    store.save_events(first.collect_events())
    bystander = new_inference(2)
    before = store.max_notification_id()

    with pytest.raises(StoreConflictError):
        store.save_events(list(bystander.collect_events()) + list(stale.collect_events()))

    assert not store.exists(bystander.id)
    assert store.max_notification_id() == before
    assert store.get(first.id, Inference).version == 2


def hold_row_exclusive(conn: psycopg.Connection[Any]) -> None:
    """What an uncommitted plain INSERT holds: compatible with another INSERT, so only the
    EXCLUSIVE lock makes a writer wait for it."""
    conn.execute("BEGIN")
    conn.execute(f"LOCK TABLE {TABLE} IN ROW EXCLUSIVE MODE")


def test_the_insert_waits_for_the_exclusive_table_lock(
    store: EventStore, other: psycopg.Connection[Any]
) -> None:
    hold_row_exclusive(other)
    inference = new_inference(3)
    done = threading.Event()
    outcome: list[object] = []

    def save() -> None:
        try:
            outcome.append(store.save_events(inference.collect_events()))
        except Exception as exc:
            outcome.append(exc)
        done.set()

    thread = threading.Thread(target=save)
    thread.start()
    try:
        waiting: list[Any] = []
        deadline = time.monotonic() + 5
        while not waiting and time.monotonic() < deadline:
            waiting = other.execute(
                "SELECT mode FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
                (TABLE,)).fetchall()
            time.sleep(0.05)
        assert waiting == [("ExclusiveLock",)]
        assert not done.is_set()
    finally:
        other.execute("COMMIT")
        thread.join(10)
    assert done.is_set()
    assert not isinstance(outcome[0], Exception), outcome
    assert store.get(inference.id, Inference).version == 1


def test_the_lock_wait_is_bounded_by_the_librarys_lock_timeout(
    database: Database, other: psycopg.Connection[Any]
) -> None:
    app = LedgerApplication(env={**database.eventsourcing_env(), "POSTGRES_LOCK_TIMEOUT": "1"})
    try:
        hold_row_exclusive(other)
        try:
            began = time.monotonic()
            with pytest.raises(OperationalError, match="lock timeout"):
                app.save(new_inference(4))
            assert time.monotonic() - began < 5
        finally:
            other.execute("COMMIT")
        assert app.save(new_inference(5))  # the lock free again, the same app writes
    finally:
        app.close()


def test_a_commit_notifies_the_librarys_channel(
    store: EventStore, other: psycopg.Connection[Any]
) -> None:
    channel = recorder_of(store).channel_name
    assert channel == TABLE
    other.execute(f"LISTEN {channel}")
    store.save_events(four_events(6))
    got = list(other.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in got] == [channel]


def test_a_commit_is_one_round_trip(database: Database) -> None:
    env = {**database.eventsourcing_env(), "POSTGRES_POOL_SIZE": "1",
           "POSTGRES_MAX_OVERFLOW": "0"}
    app = LedgerApplication(env=env)
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    try:
        app.save(new_inference(7))  # connect, prepare
        with tempfile.TemporaryFile("w+") as trace:
            with datastore.get_connection() as conn:  # the pool's only one
                conn.pgconn.trace(trace.fileno())
            try:
                app.save(*(new_inference(n) for n in range(8, 12)))
            finally:
                with datastore.get_connection() as conn:
                    conn.pgconn.untrace()
            trace.seek(0)
            messages = [line.split("\t") for line in trace.read().splitlines()]
    finally:
        app.close()
    # libpq's trace: direction, length, message type, ...; each Sync is one round trip.
    syncs = [m for m in messages if len(m) > 3 and m[1] == "F" and m[3].startswith("Sync")]
    assert len(syncs) == 1, messages


def function_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %s AND p.proname = %s", (schema, f"{TABLE}_insert_locked"),
    ).fetchone()
    assert row is not None
    return bool(row[0])


def drop_function(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"DROP FUNCTION {TABLE}_insert_locked")


def test_a_database_set_up_before_the_function_existed_gets_it(
    database: Database, store: EventStore, other: psycopg.Connection[Any]
) -> None:
    store.save_events(four_events(20))
    drop_function(other)  # as the tables an earlier version created, function-less

    # A running writer, its statement already prepared, creates it on first use.
    recordings = store.save_events(four_events(21))
    assert len(recordings) == 4
    assert function_exists(other, database.pg_schema)

    # A gateway starting on such a database creates it with the library's tables.
    drop_function(other)
    restarted = EventStore(database)
    try:
        assert function_exists(other, database.pg_schema)
        assert len(restarted.save_events(four_events(22))) == 4
    finally:
        restarted.close()
    ids = [n.id for n in store.notifications(1, 100)]
    assert ids == list(range(1, 13))


def test_tables_created_without_the_function_and_create_table_off(
    database: Database, other: psycopg.Connection[Any]
) -> None:
    first = EventStore(database)
    first.close()
    drop_function(other)
    app = LedgerApplication(env={**database.eventsourcing_env(), "CREATE_TABLE": "no"})
    try:
        assert not function_exists(other, database.pg_schema)
        recordings = app.save(new_inference(30))
        assert [r.notification.id for r in recordings] == [1]
        assert isinstance(recordings[0].domain_event.originator_id, UUID)
    finally:
        app.close()




def test_gateways_starting_at_once_on_a_new_schema_all_start(postgres_url: str) -> None:
    """Several processes opening the store of a fresh schema at the same moment (a rolling
    deploy, a gateway and its projector child): PostgreSQL refuses concurrent CREATE OR
    REPLACE FUNCTION ("tuple concurrently updated"), so the library's table creation is
    serialised across processes by an advisory lock."""
    base = postgres_url.split("schema=")[0].rstrip("?&")
    failures: list[BaseException] = []
    for _ in range(4):
        schema = f"t_{uuid4().hex[:16]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
        start = threading.Barrier(6)
        stores: list[EventStore] = []

        def open_one(url: str = url, start: threading.Barrier = start,
                     stores: list[EventStore] = stores) -> None:
            start.wait()
            try:
                stores.append(EventStore(Database.from_url(url)))
            except BaseException as exc:  # collected, and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for store in stores:
            store.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    assert failures == []
