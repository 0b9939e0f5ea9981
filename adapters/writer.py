"""Group commit: one writer thread owns the synchronous event store; async request handlers
hand it pending events and await; it saves everything queued in one transaction.

Rules this module keeps:
- A caller is acknowledged only after its events are committed.
- A failed batch of several callers is retried caller by caller, so one bad write (say, a
  version conflict) fails only its own caller; a caller whose write fails gets a
  WriteFailedError and nothing of it is recorded. Nothing acknowledged is ever lost or repeated,
  because each transaction is all-or-nothing.
- A caller that stops waiting (cancelled, client gone) does not cancel its write.
- A write submitted with `keep_trying` (the events after an inference's Routed: it is in
  flight, and a lost middle event would leave an aggregate no one can load) is not given up
  while the store is unreachable: it waits in a backlog, retried with back-off, until it lands
  or the writer closes. Later writes of the same aggregate queue behind it, so its events are
  recorded in version order. A retry whose first attempt did commit (the connection broke
  while the commit was answered) finds its own events there and counts as recorded.
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

from adapters.store import EventStore, StoreConflictError, StoreError, StoreUnavailableError

log = logging.getLogger("ainfera.writer")

Events = Sequence[DomainEventProtocol[UUID]]
Resolve = Callable[[int | BaseException], None]


@dataclass(slots=True)
class _Submission:
    events: Events
    resolve: Resolve
    keep_trying: bool = False
    # An async caller's loop and future: a committed batch wakes each loop once for all its
    # callers (`_resolve_all`), not once per caller; every wake-up is a syscall made while
    # holding the GIL the event loop is waiting for.
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[int] | None = None

    @property
    def aggregates(self) -> set[UUID]:
        return {e.originator_id for e in self.events}


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    submissions: int = 0
    events: int = 0
    largest_batch: int = 0
    failures: int = 0


_STOP = object()
# Back-off of the backlog's retries while the store is unreachable.
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 2.0


class GroupCommitWriter:
    """Batches concurrent saves into single transactions on a dedicated thread."""

    def __init__(self, store: EventStore, max_batch: int = 256) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Submission | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ainfera-writer", daemon=True)
        self._closed = False
        self.stats = WriterStats()
        # Only the writer thread touches these.
        self._backlog: list[_Submission] = []
        self._retry_in = RETRY_FIRST_S
        self.backlog_size = 0  # read by readiness and metrics from other threads

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

    def submit(self, *aggregates: Aggregate | None,
               keep_trying: bool = False) -> asyncio.Future[int]:
        """Queues the aggregates' pending events now and returns the future of their commit.

        Queueing is synchronous, so code that must record even while being cancelled (a
        stream's finally block) can queue first and await after. Cancelling the future only
        stops the waiting: the queued write still happens. With `keep_trying` the future
        resolves only once the events are recorded (or refused as a conflict, or the writer
        closes): callers bound their own wait.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        events = _collect(aggregates)
        if not events:
            future.set_result(0)
            return future

        def resolve(outcome: int | BaseException) -> None:
            loop.call_soon_threadsafe(_settle, future, outcome)

        self._submit(_Submission(events, resolve, keep_trying, loop, future))
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
            try:
                first = self._queue.get(timeout=self._retry_in if self._backlog else None)
            except queue.Empty:
                self._retry_backlog()
                continue
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
            if self._backlog:
                self._retry_backlog()
                batch = self._behind_backlog(batch)
            if batch:
                self._commit(batch)
        self._retry_backlog()
        self._fail_backlog()

    def _commit(self, batch: list[_Submission]) -> None:
        stats = self.stats
        stats.batches += 1
        stats.submissions += len(batch)
        stats.largest_batch = max(stats.largest_batch, len(batch))
        try:
            highest = self._write([e for s in batch for e in s.events])
        except StoreError as exc:
            if len(batch) == 1:
                self._failed(batch[0], exc)
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
        _resolve_all(batch, highest)

    def _commit_alone(self, submission: _Submission) -> None:
        if self._backlog and submission.aggregates & self._pending_aggregates():
            self._to_backlog(submission)  # an earlier event of its aggregate is waiting
            return
        try:
            highest = self._write(list(submission.events))
        except StoreError as exc:
            self._failed(submission, exc)
            return
        except Exception as exc:
            self.stats.failures += 1
            submission.resolve(WriteFailedError(f"unexpected writer error: {exc!r}"))
            return
        submission.resolve(highest)

    def _failed(self, submission: _Submission, exc: StoreError) -> None:
        if isinstance(exc, StoreConflictError) and submission.keep_trying \
                and self._already_recorded(submission):
            submission.resolve(0)
            return
        if submission.keep_trying and isinstance(exc, StoreUnavailableError):
            self._to_backlog(submission)
            return
        self.stats.failures += 1
        conflict = isinstance(exc, StoreConflictError)
        submission.resolve(WriteFailedError(
            str(exc), conflict=conflict,
            found=self._describe(submission) if conflict else None))

    # -- the backlog: writes that wait for the store to come back -------------------------

    def _to_backlog(self, submission: _Submission) -> None:
        if not self._backlog:
            log.warning("the store is unreachable: holding writes of calls in flight until "
                        "it is back")
            self._retry_in = RETRY_FIRST_S
        self._backlog.append(submission)
        self.backlog_size = len(self._backlog)

    def _pending_aggregates(self) -> set[UUID]:
        return set().union(*(s.aggregates for s in self._backlog))

    def _behind_backlog(self, batch: list[_Submission]) -> list[_Submission]:
        """Submissions of an aggregate with events still in the backlog wait behind them."""
        if not self._backlog:
            return batch
        pending = self._pending_aggregates()
        ready = []
        for submission in batch:
            if submission.aggregates & pending:
                if submission.keep_trying:
                    self._to_backlog(submission)
                else:
                    submission.resolve(WriteFailedError(
                        "earlier events of this aggregate are still waiting for the store"))
            else:
                ready.append(submission)
        return ready

    def _retry_backlog(self) -> None:
        """Writes what waits, in order, until the store refuses again."""
        while self._backlog:
            submission = self._backlog[0]
            try:
                highest = self._write(list(submission.events))
            except StoreUnavailableError:
                self._retry_in = min(self._retry_in * 2, RETRY_MAX_S)
                return
            except StoreError as exc:
                self._backlog.pop(0)
                self.backlog_size = len(self._backlog)
                if isinstance(exc, StoreConflictError) and self._already_recorded(submission):
                    submission.resolve(0)
                    continue
                self.stats.failures += 1
                log.error("a held write was refused when the store came back: %s", exc)
                conflict = isinstance(exc, StoreConflictError)
                submission.resolve(WriteFailedError(
                    str(exc), conflict=conflict,
                    found=self._describe(submission) if conflict else None))
                continue
            except Exception as exc:
                self._backlog.pop(0)
                self.backlog_size = len(self._backlog)
                log.exception("unexpected error writing a held write")
                submission.resolve(WriteFailedError(f"unexpected writer error: {exc!r}"))
                continue
            self._backlog.pop(0)
            self.backlog_size = len(self._backlog)
            if not self._backlog:
                log.warning("the store is back: every held write is recorded")
            submission.resolve(highest)

    def _fail_backlog(self) -> None:
        for submission in self._backlog:
            log.error("closing with %d event(s) of %s not recorded (the store is unreachable)",
                      len(submission.events), sorted(map(str, submission.aggregates)))
            submission.resolve(WriteFailedError(
                "the writer closed while the store was unreachable; not recorded"))
        self._backlog.clear()
        self.backlog_size = 0

    def _already_recorded(self, submission: _Submission) -> bool:
        """After a conflict: are the events at those versions ours (a retry of a commit that
        did land), rather than someone else's?"""
        try:
            for aggregate_id in submission.aggregates:
                stored = {(e.originator_version, type(e).__name__, getattr(e, "timestamp", None))
                          for e in self._store.events_of(aggregate_id)}
                ours = {(e.originator_version, type(e).__name__, getattr(e, "timestamp", None))
                        for e in submission.events if e.originator_id == aggregate_id}
                if not ours <= stored:
                    return False
        except StoreError:
            return False
        return True

    def _describe(self, submission: _Submission) -> str | None:
        """What the store holds of the submission's aggregates, for the caller to be told
        (e.g. `Routed, Dispatched, Completed (abandoned, by repair_...)`)."""
        try:
            parts = []
            for aggregate_id in sorted(submission.aggregates, key=str):
                names = []
                for event in self._store.events_of(aggregate_id):
                    name = type(event).__name__
                    status = getattr(event, "status", None)
                    if status is not None:
                        name += f" ({status}, by {getattr(event, 'request_id', '?')})"
                    names.append(name)
                parts.append(", ".join(names))
            return "; ".join(parts)
        except StoreError:
            return None

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


def _resolve_all(batch: list[_Submission], outcome: int) -> None:
    """Resolves a committed batch: one call into each event loop that waits on it."""
    waiting: dict[asyncio.AbstractEventLoop, list[asyncio.Future[int]]] = {}
    for submission in batch:
        if submission.loop is not None and submission.future is not None:
            waiting.setdefault(submission.loop, []).append(submission.future)
        else:
            submission.resolve(outcome)
    for loop, futures in waiting.items():
        loop.call_soon_threadsafe(_settle_all, futures, outcome)


def _settle_all(futures: list[asyncio.Future[int]], outcome: int) -> None:
    for future in futures:
        _settle(future, outcome)


def _settle(future: asyncio.Future[int], outcome: int | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class WriteFailedError(Exception):
    """The events were not recorded; the caller's request must fail. `conflict`: the store
    refused them because it holds other events at those versions (someone else wrote them)."""

    def __init__(self, message: str, *, conflict: bool = False,
                 found: str | None = None) -> None:
        super().__init__(message)
        self.conflict = conflict
        self.found = found  # after a conflict: what the store holds of the aggregate
