"""The one projection runner: pulls the application sequence from a projection's own tracking
position, applies it in batches (the rows and the position in one transaction), and between
batches sleeps on a short poll that PostgreSQL NOTIFY or a waiting reader can cut short.

Why pull rather than subscribe: a SQLite application cannot be subscribed to, and a
LISTEN/NOTIFY subscription can block forever when a notification is lost (eventsourcing issue
305). Polling from the stored position serves both backends and survives lost wake-ups, so
NOTIFY is only ever a hint.

Two runners on one projection (two gateways, or a gateway and `ainfera project`) never apply
an event twice: a batch starts by locking the projection's position and gives up, rolling
back, when the position is not where the runner thought; a racing first insert is caught by
the tracking row itself (IntegrityError) and rolled back the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification, Tracking

from projections.view import SqlProjection

log = logging.getLogger("ainfera.projections")

MAX_BACKOFF_S = 30.0


class NotificationSource(Protocol):
    """The application sequence, as the event store adapter offers it."""

    def notifications(self, start: int, limit: int) -> Sequence[Notification]: ...

    def decode(self, notification: Notification) -> DomainEventProtocol[UUID]: ...

    def max_notification_id(self) -> int: ...


class _PositionMoved(Exception):
    def __init__(self, position: int) -> None:
        self.position = position


class ProjectionRunner:
    """Drives one projection: from its own thread (`start`/`stop`), or from the calling thread
    (`run_once`, `catch_up`), never both, because a view's connection belongs to one thread."""

    def __init__(self, projection: SqlProjection, source: NotificationSource, *,
                 batch_size: int = 500, poll_interval: float = 0.25,
                 stop_at: int | None = None) -> None:
        self.projection = projection
        self.view = projection.view
        self.source = source
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.stop_at = stop_at
        self.applied_total = 0
        self.last_error: str | None = None
        self._position: int | None = None
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.projection.name

    def position(self) -> int:
        """The last position this runner saw committed (0 before it has looked)."""
        return self._position or 0

    def lag(self) -> int:
        """Events in the store that this projection has not applied yet."""
        return max(self.source.max_notification_id() - self.position(), 0)

    def run_once(self, limit: int | None = None) -> int:
        """Applies at most one batch; returns how many events it applied (0 when caught up, or
        when another runner got there first, in which case the position is re-read)."""
        expected = self._known_position()
        notifications = self.source.notifications(expected + 1, limit or self.batch_size)
        if self.stop_at is not None:
            notifications = [n for n in notifications if n.id <= self.stop_at]
        app = self.view.application_name
        if not notifications:
            # Idle: re-read the stored position, so a rebuild elsewhere (which moves it back)
            # is noticed even when no new event arrives to collide with.
            stored = self.view.max_tracking_id(app) or 0
            if stored != expected:
                self._publish(stored)
            return 0
        try:
            with self.view.transaction():
                position = self.view.lock_position()
                if position != expected:
                    raise _PositionMoved(position)
                for notification in notifications:
                    event = self.source.decode(notification)
                    self.projection.process_event(event, Tracking(app, notification.id))
        except _PositionMoved as moved:
            self._publish(moved.position)
            return 0
        except Exception:
            # A conflict with another runner surfaces as a key or tracking conflict; the batch
            # has rolled back, and a moved position tells a lost race from a real failure.
            actual = self.view.max_tracking_id(app) or 0
            if actual != expected:
                log.debug("%s: another runner applied events first; now at %d", self.name, actual)
                self._publish(actual)
                return 0
            raise
        self.applied_total += len(notifications)
        self._publish(notifications[-1].id)
        return len(notifications)

    def catch_up(self, max_events: int | None = None) -> int:
        """Applies batches in the calling thread until nothing is left (or `max_events` have
        been applied, which is how tests stop a runner half way); returns the count."""
        applied = 0
        while max_events is None or applied < max_events:
            room = self.batch_size if max_events is None else min(self.batch_size,
                                                                  max_events - applied)
            before = self._known_position()
            done = self.run_once(room)
            if done == 0 and self.position() == before:
                break
            applied += done
        return applied

    def wait_for(self, notification_id: int, timeout: float) -> bool:
        """Blocks until this projection has applied `notification_id` (True) or `timeout`
        seconds pass (False). With the runner's thread running it wakes that thread and waits
        for it; otherwise it applies what is missing in the calling thread."""
        deadline = time.monotonic() + timeout
        if self._thread is None or not self._thread.is_alive():
            while self._known_position() < notification_id:
                before = self.position()
                if self.run_once() == 0 and self.position() == before:
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

    def nudge(self) -> None:
        """Ends the current poll sleep early (new events are probably there)."""
        self._wake.set()

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=f"projection-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the batch in flight; a batch cut short by process death simply never
        commits, and the next runner starts from the last committed position."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: runner did not stop within %.1fs", self.name, timeout)

    def _loop(self) -> None:
        backoff = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    before = self._position
                    applied = self.run_once()
                    self.last_error = None
                    backoff = 0.0
                except Exception as exc:
                    # Supervision: never let the thread die; back off and retry from the
                    # stored position, exposing the error meanwhile.
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    backoff = min(max(backoff * 2, 0.5), MAX_BACKOFF_S)
                    log.exception("%s: batch failed; retrying in %.1fs", self.name, backoff)
                    self._stopping.wait(backoff)
                    continue
                if applied >= self.batch_size or self._position != before:
                    continue
                if self._wake.wait(self.poll_interval):
                    self._wake.clear()
        finally:
            self.view.close()

    def _known_position(self) -> int:
        if self._position is None:
            self._publish(self.view.max_tracking_id(self.view.application_name) or 0)
        return self.position()

    def _publish(self, position: int) -> None:
        with self._changed:
            self._position = position
            self._changed.notify_all()


def describe(runner: ProjectionRunner) -> dict[str, Any]:
    """A runner's state for logs and the CLI."""
    return {"projection": runner.name, "position": runner.position(), "lag": runner.lag(),
            "applied": runner.applied_total, "error": runner.last_error}
