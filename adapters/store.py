"""The event store: the eventsourcing library's own persistence (SQLite or PostgreSQL) behind
one Application, and our errors in place of the library's.

There is no home-made event table: the library records events, assigns the application
sequence (the notification log the ledger and projections follow) and enforces one event per
aggregate version. This module never writes from the request path itself; writes go through
the group-commit writer.
"""

from __future__ import annotations

import logging
import threading
import time
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
from adapters.pg_recorder import connection_lost

log = logging.getLogger("ainfera.store")

A = TypeVar("A", bound=Aggregate)


class LedgerApplication(Application[UUID]):
    """The one application whose sequence is the ledger: inferences, tenants, agents, keys."""

    name = "Ainfera"
    is_snapshotting_enabled = False


class OutageBreaker:
    """Fails callers at once while the store is known to be unreachable.

    Without it, every caller during an outage waits out the connect timeout on its own
    thread: a burst of requests fills the worker threads and everything, `/readyz` included,
    queues behind them. After an unreachable-store error, callers are refused immediately for
    `hold_s`; then one caller at a time is let through as a trial, and the first success
    closes the breaker. Only errors that mean the server is gone open it (never a conflict or
    a refused statement), and SQLite, a local file, never has one.
    """

    def __init__(self, hold_s: float = 0.5) -> None:
        self._hold_s = hold_s
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._since = 0.0
        self._retry_at = 0.0
        self._trial = False

    @property
    def outage(self) -> tuple[str, float] | None:
        """Why the store is taken for unreachable and since when (monotonic), or None."""
        with self._lock:
            return None if self._reason is None else (self._reason, self._since)

    def enter(self) -> bool:
        """Before a store call: raises while the breaker is open; True for a trial call."""
        if self._reason is None:  # the common case, read without the lock
            return False
        with self._lock:
            if self._reason is None:
                return False
            now = time.monotonic()
            if now < self._retry_at or self._trial:
                raise StoreUnavailableError(
                    f"the event store is unreachable ({self._reason}, for "
                    f"{now - self._since:.1f} s); retry shortly")
            self._trial = True
            return True

    def succeeded(self, trial: bool) -> None:
        if trial or self._reason is not None:
            with self._lock:
                if self._reason is not None:
                    log.warning("the event store is reachable again after %.1f s",
                                time.monotonic() - self._since)
                self._reason = None
                self._trial = False

    def failed(self, trial: bool, reason: str) -> None:
        with self._lock:
            now = time.monotonic()
            if self._reason is None:
                log.error("the event store is unreachable: %s", reason)
                self._since = now
            self._reason = reason
            self._retry_at = now + self._hold_s
            if trial:
                self._trial = False

    def abandon_trial(self, trial: bool) -> None:
        """A trial that failed for another reason (a conflict) still answered: the store is up."""
        self.succeeded(trial)


class EventStore:
    """Owns the LedgerApplication for one database and translates its errors into ours."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.breaker = OutageBreaker()
        with translate_store_errors():
            self.app = LedgerApplication(env=database.eventsourcing_env())

    @contextmanager
    def _call(self) -> Iterator[None]:
        """Every store call: our errors for the library's, and the outage breaker."""
        trial = self.breaker.enter()
        try:
            with translate_store_errors():
                yield
        except StoreUnavailableError as exc:
            if connection_lost(exc.__cause__ or exc):
                self.breaker.failed(trial, str(exc))
            else:
                self.breaker.abandon_trial(trial)
            raise
        except BaseException:
            self.breaker.abandon_trial(trial)
            raise
        self.breaker.succeeded(trial)

    def close(self) -> None:
        self.app.close()

    def get(self, aggregate_id: UUID, kind: type[A]) -> A:
        """Reads an aggregate; a missing id or an aggregate of another kind is NotFound."""
        with self._call():
            try:
                aggregate: Aggregate = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                raise AggregateMissingError(f"{kind.__name__} {aggregate_id} not found") from None
        if not isinstance(aggregate, kind):
            raise AggregateMissingError(f"{kind.__name__} {aggregate_id} not found")
        return aggregate

    def exists(self, aggregate_id: UUID) -> bool:
        with self._call():
            return aggregate_id in self.app.repository

    def events_of(self, aggregate_id: UUID) -> list[DomainEventProtocol[UUID]]:
        with self._call():
            return list(self.app.events.get(aggregate_id))

    def save_events(self, events: Sequence[DomainEventProtocol[UUID]]) -> list[Recording[UUID]]:
        """Records events atomically in one transaction (the writer's unit of group commit)."""
        with self._call():
            return self.app.save(*events)

    def max_notification_id(self) -> int:
        with self._call():
            return self.app.recorder.max_notification_id() or 0

    def notifications(self, start: int, limit: int,
                      topics: Sequence[str] = ()) -> Sequence[Notification]:
        """Reads the application sequence from `start` (inclusive), in order; with `topics`,
        only the events of those topics (the library filters in SQL)."""
        with self._call():
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
