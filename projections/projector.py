"""The projector: every read model of a process, fed from one pass over the application sequence.

Each batch is read from the notification log once, decoded once, handed to every read model
(each folds its part and writes set-based), and committed in ONE transaction with every model's
tracking position. The ledger sequencer is one of the models: a sequential stage on the same
batch, connection and transaction.

Why pull rather than subscribe: a SQLite application cannot be subscribed to, and a LISTEN/NOTIFY
subscription can block forever when a notification is lost (eventsourcing issue 305). Polling
from the stored positions serves both backends and survives lost wake-ups, so NOTIFY is only a
hint (projections.wakeup), answered after a short coalescing window (COALESCE_S) so that a
trickle of commits does not cost a pass each; a waiting reader (`nudge`, `wait_for`) cuts a
poll or a window short.

Positions: each model keeps its own tracking row (projections.tracking). A batch is read from the
lowest position of the models that still have work, and each model applies only the events past
its own position, so a model rebuilt from zero (`ainfera rebuild NAME`) catches up while the
others skip what they have. Two projectors (threads, gateways, `ainfera project` workers) never
apply an event twice: a batch starts by locking every position it may move (SELECT ... FOR
UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite) and plans from the positions it locked; a
position that moved back below what was read (a rebuild) makes it roll back and read again.

Failures: a failing batch rolls back, its connection is dropped (a PostgreSQL restart leaves it
dead: `AdminShutdown`, "the connection is closed") and a new one is opened for the next attempt,
after a back-off of 0.5 s doubling to 5 s. The projector thread never dies and never needs a
process restart; `state()` shows the position, lag, last error and last success meanwhile. A
process killed mid-batch loses only the uncommitted batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification

from projections import tracking
from projections.fold import ReadModel, Sequenced
from projections.view import APPLICATION_NAME, Connect, Session
from projections.wakeup import WakeUpListener

log = logging.getLogger("ainfera.projections")

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 5.0
# After a NOTIFY wake-up, how long the thread lets further events gather before its pass. A
# pass costs about the same CPU for one event as for a hundred (a read, every model's writes,
# the positions, a commit), and at one connection the events of a call arrive a few ms apart:
# without the window the projector ran a whole pass per commit and cost more CPU per call than
# the gateway. 80 ms keeps the read models well under a second behind (a window, a pass) while
# a trickle of ~80 events/s costs a pass per ~6 events. A reader waiting for a position
# (`nudge`, `wait_for`) is not made to wait for it.
COALESCE_S = 0.08


class NotificationSource(Protocol):
    """The application sequence, as the event store adapter offers it."""

    def notifications(self, start: int, limit: int) -> Sequence[Notification]: ...

    def decode(self, notification: Notification) -> DomainEventProtocol[UUID]: ...

    def max_notification_id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ProjectorState:
    """What the projector last knew, without asking the database: for /metrics and /readyz.

    `position` is the lowest model position (every model has applied the sequence up to it);
    `head` the store's last notification id as last seen and `lag` = head - position;
    `statements_total` counts what it sent to the database (set-based writes keep it at a
    few per batch, whatever the batch holds); `last_error` is the failure of the latest
    attempt, None once a batch (or idle check) succeeds again; `last_success_at` is when the
    projector last reached the database."""

    positions: Mapping[str, int]
    position: int
    head: int
    lag: int
    running: bool
    applied_total: int
    batches_total: int
    statements_total: int
    errors_total: int
    last_error: str | None
    last_error_at: datetime | None
    last_success_at: datetime | None


class _Behind(Exception):
    """A position is below what the batch was read from (a rebuild reset it): read again."""


class Projector:
    """Drives `models` from its own thread (`start`/`stop`), or from the calling thread
    (`run_once`, `catch_up`, `wait_for` when not started), never both at once: its connection
    belongs to one thread. `limits` stops a model at a notification id (`ainfera verify`
    replays each model up to the position its live table was read at)."""

    def __init__(self, models: Sequence[ReadModel], source: NotificationSource,
                 connect: Connect, kind: str, *, batch_size: int = 500,
                 poll_interval: float = 0.25, limits: Mapping[str, int] | None = None,
                 listen_connect: Connect | None = None, channel: str | None = None,
                 application_name: str = APPLICATION_NAME) -> None:
        if not models:
            raise ValueError("a projector needs at least one read model")
        self.models = list(models)
        self.source = source
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.application_name = application_name
        self._connect = connect
        self._kind = kind
        self._limits = dict(limits or {})
        self._session: Session | None = None
        self._positions: dict[str, int] | None = None
        self._applied = dict.fromkeys(self.names, 0)
        self._head = 0
        self._batches = 0
        self._statements_before = 0  # sent on connections since dropped
        self._errors = 0
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._last_success_at: datetime | None = None
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._more = False  # the last batch was full: more events are probably waiting
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener = (WakeUpListener(listen_connect, channel, self.hint, self.nudge)
                          if listen_connect is not None and channel else None)

    @property
    def names(self) -> list[str]:
        return [model.name for model in self.models]

    # -- one batch -------------------------------------------------------------------------

    def run_once(self, limit: int | None = None) -> int:
        """Applies at most one batch; returns how many events it applied (0 when caught up, or
        when another projector got there first, in which case the positions are re-read)."""
        try:
            applied = self._run_once(limit or self.batch_size)
        except Exception as exc:
            self._failed(exc)
            raise
        with self._changed:
            self._last_error = None
            self._last_success_at = datetime.now(UTC)
        return applied

    def _run_once(self, limit: int) -> int:
        known = self._known_positions()
        start = self._start(known)
        if start is None:
            return 0  # every model is at its limit
        notifications = list(self.source.notifications(start, limit))
        self._more = len(notifications) >= limit
        top = self._top()
        if top is not None:
            notifications = [n for n in notifications if n.id <= top]
        if not notifications:
            # Idle: re-read the stored positions, so a rebuild elsewhere (which moves one
            # back) is noticed even when no new event arrives to collide with.
            self._publish(self._read_positions(), head=start - 1)
            return 0
        batch = [Sequenced(n.id, self.source.decode(n)) for n in notifications]
        for model in self.models:
            # What each model will apply if no other projector moves its position meanwhile.
            model.prepare(self._todo(model, known[model.name], batch))
        applied = self.apply(batch, start)
        head = batch[-1].notification_id
        if len(notifications) >= limit:
            head = max(head, self.source.max_notification_id())
        self._publish(None, head=head)
        return applied

    def apply(self, batch: Sequence[Sequenced], start: int) -> int:
        """Applies `batch`, which holds every notification from `start` up to its last one,
        to each model past its position, and moves the positions, in one transaction; returns
        how many of its events at least one model applied."""
        last = batch[-1].notification_id
        try:
            with self._transaction() as session:
                locked = tracking.lock(session, self.names, self.application_name)
                plan = self._plan(locked, batch, start, last)
                for model, (_, todo) in plan.items():
                    if todo:
                        model.apply(session, todo)
                tracking.advance(session, {m.name: upto for m, (upto, _) in plan.items()},
                                 self.application_name)
        except _Behind:
            self._publish(self._read_positions())
            return 0
        for model, (_, todo) in plan.items():
            if todo:
                model.committed()
            self._applied[model.name] += len(todo)
        self._batches += bool(plan)
        self._publish({**locked, **{m.name: upto for m, (upto, _) in plan.items()}})
        applied = {item.notification_id for _, todo in plan.values() for item in todo}
        return len(applied)

    def _plan(self, locked: Mapping[str, int], batch: Sequence[Sequenced], start: int,
              last: int) -> dict[ReadModel, tuple[int, list[Sequenced]]]:
        """Per model with work in this batch: the position it moves to and its events."""
        plan: dict[ReadModel, tuple[int, list[Sequenced]]] = {}
        for model in self.models:
            position = locked[model.name]
            upto = min(last, self._limits.get(model.name, last))
            if upto <= position:
                continue  # applied already (another projector got there first) or at its limit
            if position < start - 1:
                raise _Behind(model.name)
            plan[model] = (upto, self._todo(model, position, batch))
        return plan

    def _todo(self, model: ReadModel, position: int,
              batch: Sequence[Sequenced]) -> list[Sequenced]:
        """The events of `batch` past `position`, up to the model's limit."""
        upto = self._limits.get(model.name)
        if upto is None and (not batch or position < batch[0].notification_id):
            return list(batch)  # the usual case, without a test per event per model
        return [item for item in batch if position < item.notification_id
                and (upto is None or item.notification_id <= upto)]

    # -- driving it from the calling thread ------------------------------------------------

    def catch_up(self, max_events: int | None = None) -> int:
        """Applies batches in the calling thread until nothing is left (or `max_events`
        notifications have been consumed, which is how tests stop a projector half way);
        returns how many events were applied."""
        applied = 0
        while max_events is None or applied < max_events:
            room = self.batch_size if max_events is None else min(self.batch_size,
                                                                  max_events - applied)
            before = self.positions()
            done = self.run_once(room)
            if done == 0 and self.positions() == before:
                break
            applied += done
        return applied

    def wait_for(self, notification_id: int, timeout: float) -> bool:
        """Blocks until every model has applied `notification_id` (True) or `timeout` seconds
        pass (False). With the thread running it wakes it and waits for it; otherwise it
        applies what is missing in the calling thread."""
        deadline = time.monotonic() + timeout
        if self._thread is None or not self._thread.is_alive():
            while self.position() < notification_id:
                before = self.positions()
                if self.run_once() == 0 and self.positions() == before:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    time.sleep(min(self.poll_interval, remaining))
            return True
        self.nudge()
        with self._changed:
            while self.position() < notification_id:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def reset(self, name: str) -> None:
        """`ainfera rebuild NAME`: in one transaction, the model's position goes back to 0
        (which waits for a batch in flight to commit) and every row of its tables goes."""
        model = next((m for m in self.models if m.name == name), None)
        if model is None:
            raise LookupError(f"this projector does not run {name!r}")
        try:
            with self._transaction() as session:
                tracking.lock(session, [name], self.application_name)
                tracking.reset(session, name, self.application_name)
                for table in model.tables:
                    session.execute(f"DELETE FROM {table}")
        except Exception:
            self._drop()
            raise
        self._positions = None

    # -- its own thread --------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="projector", daemon=True)
        self._thread.start()
        if self._listener is not None:
            self._listener.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the batch in flight; a batch cut short by process death simply never
        commits, and the next projector starts from the last committed positions."""
        self._stopping.set()
        self._urgent.set()
        self._wake.set()
        if self._listener is not None:
            self._listener.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("projector did not stop within %.1fs", timeout)

    def nudge(self) -> None:
        """Runs a pass now: ends the current poll sleep or coalescing window (a reader is
        waiting for events that are probably there)."""
        self._urgent.set()
        self._wake.set()

    def hint(self) -> None:
        """Events were written (a NOTIFY): runs a pass once COALESCE_S has let more gather."""
        self._wake.set()

    def close(self) -> None:
        """Drops the connection of a projector driven from the calling thread."""
        self._drop()

    def _loop(self) -> None:
        backoff = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    before = self._positions
                    applied = self.run_once()
                    backoff = 0.0
                except Exception:
                    # Supervision: never let the thread die; back off and retry from the
                    # stored positions on a new connection, exposing the error meanwhile.
                    # The traceback is logged once per outage, then one line per attempt.
                    if backoff:
                        log.warning("projector: batch failed again (%s); retrying in %.1fs",
                                    self._last_error, backoff)
                    else:
                        log.exception("projector: batch failed; retrying")
                    backoff = min(max(backoff * 2, FIRST_BACKOFF_S), MAX_BACKOFF_S)
                    self._stopping.wait(backoff)
                    continue
                if self._more or (applied == 0 and self._positions != before):
                    # A full batch, or positions that moved under it (another projector, a
                    # rebuild): go again now. After a partial batch the store's end was
                    # reached, so an immediate second pass would only find nothing.
                    continue
                if self._wake.wait(self.poll_interval):
                    self._wake.clear()
                    if not self._urgent.is_set():
                        self._urgent.wait(COALESCE_S)
                    self._urgent.clear()
        finally:
            self._drop()

    # -- state -----------------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        """Each model's last position this projector saw committed (0 before it has looked)."""
        with self._changed:
            return dict(self._positions or dict.fromkeys(self.names, 0))

    def position(self) -> int:
        """The lowest of them: every model has applied the sequence up to here."""
        return min(self.positions().values())

    def state(self) -> ProjectorState:
        with self._changed:
            positions = dict(self._positions or dict.fromkeys(self.names, 0))
            position = min(positions.values())
            head = max(self._head, max(positions.values()))
            return ProjectorState(
                positions=positions, position=position, head=head, lag=head - position,
                running=self._thread is not None and self._thread.is_alive(),
                applied_total=sum(self._applied.values()), batches_total=self._batches,
                statements_total=self._statements_before + (
                    self._session.statements if self._session is not None else 0),
                errors_total=self._errors, last_error=self._last_error,
                last_error_at=self._last_error_at, last_success_at=self._last_success_at)

    def statuses(self) -> list[dict[str, Any]]:
        """Per model: position, lag against the store's end (read now), events applied by
        this projector and the last error, for logs and `ainfera project`."""
        latest = self.source.max_notification_id()
        positions = self.positions()
        return [{"projection": name, "position": positions[name],
                 "lag": max(latest - positions[name], 0), "applied": self._applied[name],
                 "error": self._last_error} for name in self.names]

    # -- plumbing --------------------------------------------------------------------------

    def _failed(self, exc: Exception) -> None:
        # Whatever failed, the connection is not trusted again: after a server restart it is
        # dead, and a fresh one costs less than telling the cases apart.
        self._drop()
        with self._changed:
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {_first_line(exc)}"
            self._last_error_at = datetime.now(UTC)

    def _session_now(self) -> Session:
        if self._session is None:
            self._session = Session(self._connect(), self._kind)
        return self._session

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        session = self._session_now()
        try:
            # Inside the try: a dead connection fails right here, and must be dropped.
            session.begin(write=True)
            yield session
            session.commit()
        except BaseException:
            try:
                session.rollback()
            except Exception:
                self._drop()
            raise

    def _drop(self) -> None:
        if self._session is not None:
            self._statements_before += self._session.statements
            self._session.close()
            self._session = None

    def _read_positions(self) -> dict[str, int]:
        return tracking.positions(self._session_now(), self.names, self.application_name)

    def _known_positions(self) -> dict[str, int]:
        if self._positions is None:
            self._publish(self._read_positions())
        return self.positions()

    def _start(self, positions: Mapping[str, int]) -> int | None:
        """Where the next batch starts: after the lowest position of a model with work."""
        behind = [position for name, position in positions.items()
                  if position < self._limits.get(name, position + 1)]
        return min(behind) + 1 if behind else None

    def _top(self) -> int | None:
        """The last notification any model may apply (None: no limit)."""
        if not self._limits or any(name not in self._limits for name in self.names):
            return None
        return max(self._limits[name] for name in self.names)

    def _publish(self, positions: Mapping[str, int] | None, head: int = 0) -> None:
        with self._changed:
            if positions is not None:
                self._positions = dict(positions)
            self._head = max(self._head, head)
            self._changed.notify_all()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
