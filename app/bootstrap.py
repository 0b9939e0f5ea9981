"""Opening the store, the one way every entry point does it (`ainfera serve`, every CLI
command, `ainfera project`): parse the URL, run the migrations (idempotent and serialised, so
every process may run them at start), open the event store, and close it on the way out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class OpenStore:
    database: Database
    store: EventStore


@contextmanager
def open_store(settings: Settings) -> Iterator[OpenStore]:
    """Blocking: call it from a thread when an event loop is running."""
    database = Database.from_url(settings.database_url)
    migrate(database)
    store = EventStore(database)
    try:
        yield OpenStore(database, store)
    finally:
        store.close()
