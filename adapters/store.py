"""The event store: the eventsourcing library's own persistence (SQLite or PostgreSQL) behind
one Application, and our errors in place of the library's.

There is no home-made event table: the library records events, assigns the application
sequence (the notification log the ledger and projections follow) and enforces one event per
aggregate version. This module never writes from the request path itself; writes go through
the group-commit writer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    PersistenceError,
    Recording,
)

from adapters.database import Database

A = TypeVar("A", bound=Aggregate)


class LedgerApplication(Application[UUID]):
    """The one application whose sequence is the ledger: inferences, tenants, agents, keys."""

    name = "Ainfera"
    is_snapshotting_enabled = False


class EventStore:
    """Owns the LedgerApplication for one database and translates its errors into ours."""

    def __init__(self, database: Database) -> None:
        self.database = database
        with translate_store_errors():
            self.app = LedgerApplication(env=database.eventsourcing_env())

    def close(self) -> None:
        self.app.close()

    def get(self, aggregate_id: UUID, kind: type[A]) -> A:
        """Reads an aggregate; a missing id or an aggregate of another kind is NotFound."""
        with translate_store_errors():
            try:
                aggregate: Aggregate = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                raise AggregateMissingError(f"{kind.__name__} {aggregate_id} not found") from None
        if not isinstance(aggregate, kind):
            raise AggregateMissingError(f"{kind.__name__} {aggregate_id} not found")
        return aggregate

    def exists(self, aggregate_id: UUID) -> bool:
        with translate_store_errors():
            return aggregate_id in self.app.repository

    def events_of(self, aggregate_id: UUID) -> list[DomainEventProtocol[UUID]]:
        with translate_store_errors():
            return list(self.app.events.get(aggregate_id))

    def save_events(self, events: Sequence[DomainEventProtocol[UUID]]) -> list[Recording[UUID]]:
        """Records events atomically in one transaction (the writer's unit of group commit)."""
        with translate_store_errors():
            return self.app.save(*events)

    def max_notification_id(self) -> int:
        with translate_store_errors():
            return self.app.recorder.max_notification_id() or 0

    def notifications(self, start: int, limit: int,
                      topics: Sequence[str] = ()) -> Sequence[Notification]:
        """Reads the application sequence from `start` (inclusive), in order; with `topics`,
        only the events of those topics (the library filters in SQL)."""
        with translate_store_errors():
            return self.app.recorder.select_notifications(start=start, limit=limit,
                                                          topics=topics)

    def decode(self, notification: Notification) -> DomainEventProtocol[UUID]:
        return self.app.mapper.to_domain_event(notification)

    def ping(self) -> None:
        self.max_notification_id()


@contextmanager
def translate_store_errors() -> Iterator[None]:
    """Maps the library's and the drivers' errors to ours, most specific first."""
    try:
        yield
    except IntegrityError as exc:
        raise StoreConflictError(f"the store refused a conflicting write: {exc}") from exc
    except (PersistenceError, psycopg.Error, OSError) as exc:
        raise StoreUnavailableError(f"the event store is unavailable: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def payload_of(event: DomainEventProtocol[UUID]) -> dict[str, Any]:
    """An event's own fields (without the library's bookkeeping), for reading and receipts."""
    state = dict(event.__dict__)
    for key in ("originator_id", "originator_version", "timestamp", "originator_topic"):
        state.pop(key, None)
    return state


class StoreError(Exception):
    """Base of the event store's errors."""


class StoreUnavailableError(StoreError):
    """The database could not be reached or failed; nothing acknowledged was lost."""


class StoreConflictError(StoreError):
    """A write conflicted with what is stored (an aggregate version or name already taken)."""


class AggregateMissingError(StoreError):
    """No aggregate of that kind with that id."""
