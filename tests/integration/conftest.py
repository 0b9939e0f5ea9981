"""The store the projection tests share: a migrated database on each backend
(`database_url`), its event store, and the mixed run of tenants, agents and calls
(tests/mixed_run.py) recorded in it. A test module that needs another database (PostgreSQL
only, say) defines its own `database`; the others follow it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from tests.mixed_run import Run, mixed_run


@pytest.fixture
def database(database_url: str) -> Database:
    database = Database.from_url(database_url)
    migrate(database)
    return database


@pytest.fixture
def store(database: Database) -> Iterator[EventStore]:
    store = EventStore(database)
    yield store
    store.close()


@pytest.fixture
def run(store: EventStore) -> Run:
    return mixed_run(store)
