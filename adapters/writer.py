"""Group commit: one writer thread owns the synchronous event store; async request handlers
hand it pending events and await; it saves everything queued in one transaction.

Rules this module keeps:
- A caller is acknowledged only after its events are committed.
- A failed batch of several callers is retried caller by caller, so one bad write (say, a
  version conflict) fails only its own caller; a caller whose write fails gets a
  WriteFailedError and nothing of it is recorded. Nothing acknowledged is ever lost or repeated,
  because each transaction is all-or-nothing.
- A caller that stops waiting (cancelled, client gone) does not cancel its write.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol

from adapters.store import EventStore, StoreError

log = logging.getLogger("ainfera.writer")

Events = Sequence[DomainEventProtocol[UUID]]
Resolve = Callable[[int | BaseException], None]


@dataclass(slots=True)
class _Submission:
    events: Events
    resolve: Resolve


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    submissions: int = 0
    events: int = 0
    largest_batch: int = 0
    failures: int = 0


_STOP = object()


class GroupCommitWriter:
    """Batches concurrent saves into single transactions on a dedicated thread."""

    def __init__(self, store: EventStore, max_batch: int = 256) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Submission | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ainfera-writer", daemon=True)
        self._closed = False
        self.stats = WriterStats()

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """The writer thread is running and accepting work."""
        return not self._closed and self._thread.is_alive()

    def close(self, timeout: float = 30.0) -> None:
        """Stops after saving everything already queued."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)

    async def save(self, *aggregates: Aggregate | None) -> int:
        """Commits the aggregates' pending events; returns the highest notification id written
        (0 when there was nothing to write). Raises WriteFailedError if they were not recorded.

        If the write fails the aggregate objects still hold the state of the lost events:
        callers must not save them again but reload from the store.
        """
        return await self.submit(*aggregates)

    def submit(self, *aggregates: Aggregate | None) -> asyncio.Future[int]:
        """Queues the aggregates' pending events now and returns the future of their commit.

        Queueing is synchronous, so code that must record even while being cancelled (a
        stream's finally block) can queue first and await after. Cancelling the future only
        stops the waiting: the queued write still happens.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        events = _collect(aggregates)
        if not events:
            future.set_result(0)
            return future

        def resolve(outcome: int | BaseException) -> None:
            loop.call_soon_threadsafe(_settle, future, outcome)

        self._submit(_Submission(events, resolve))
        return future

    def save_blocking(self, *aggregates: Aggregate | None, timeout: float = 60.0) -> int:
        """The same for threads that are not running an event loop (CLI, repair jobs)."""
        events = _collect(aggregates)
        if not events:
            return 0
        done = threading.Event()
        box: list[int | BaseException] = []

        def resolve(outcome: int | BaseException) -> None:
            box.append(outcome)
            done.set()

        self._submit(_Submission(events, resolve))
        if not done.wait(timeout):
            raise WriteFailedError("the writer did not answer in time; the write may still land")
        outcome = box[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _submit(self, submission: _Submission) -> None:
        if self._closed:
            raise WriteFailedError("the writer is closed")
        if not self._thread.is_alive():
            raise WriteFailedError("the writer thread is not running")
        self._queue.put(submission)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[_Submission] = [first]  # type: ignore[list-item]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            self._commit(batch)

    def _commit(self, batch: list[_Submission]) -> None:
        stats = self.stats
        stats.batches += 1
        stats.submissions += len(batch)
        stats.largest_batch = max(stats.largest_batch, len(batch))
        try:
            highest = self._write([e for s in batch for e in s.events])
        except StoreError as exc:
            if len(batch) == 1:
                stats.failures += 1
                batch[0].resolve(WriteFailedError(str(exc)))
                return
            log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            for submission in batch:
                self._commit_alone(submission)
            return
        except Exception as exc:  # a bug must fail the callers, never kill the writer thread
            log.exception("unexpected error in the writer")
            for submission in batch:
                submission.resolve(WriteFailedError(f"unexpected writer error: {exc!r}"))
            return
        for submission in batch:
            submission.resolve(highest)

    def _commit_alone(self, submission: _Submission) -> None:
        try:
            highest = self._write(list(submission.events))
        except Exception as exc:
            self.stats.failures += 1
            submission.resolve(WriteFailedError(str(exc)))
            return
        submission.resolve(highest)

    def _write(self, events: list[DomainEventProtocol[UUID]]) -> int:
        recordings = self._store.save_events(events)
        self.stats.events += len(events)
        return max((r.notification.id for r in recordings), default=0)


def _collect(aggregates: Sequence[Aggregate | None]) -> list[DomainEventProtocol[UUID]]:
    events: list[Any] = []
    for aggregate in aggregates:
        if aggregate is not None:
            events.extend(aggregate.collect_events())
    return events


def _settle(future: asyncio.Future[int], outcome: int | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class WriteFailedError(Exception):
    """The events were not recorded; the caller's request must fail."""
