"""One decode per event for all the projections of a process.

Every runner reads the application sequence on its own, but they all read the same events at
nearly the same time; decoding a stored event (JSON, transcodings, a dataclass) is the larger
part of a runner's work, so the runners of one process share the decoded events through this
bounded cache. Events are immutable, so sharing them across threads is safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification

from projections.runner import NotificationSource

DEFAULT_CAPACITY = 20_000


class SharedDecodeSource:
    """A NotificationSource that decodes each notification once for every reader."""

    def __init__(self, source: NotificationSource, capacity: int = DEFAULT_CAPACITY) -> None:
        self._source = source
        self._capacity = capacity
        self._decoded: OrderedDict[int, DomainEventProtocol[UUID]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def notifications(self, start: int, limit: int) -> Sequence[Notification]:
        return self._source.notifications(start, limit)

    def max_notification_id(self) -> int:
        return self._source.max_notification_id()

    def decode(self, notification: Notification) -> DomainEventProtocol[UUID]:
        with self._lock:
            event = self._decoded.get(notification.id)
            if event is not None:
                self._decoded.move_to_end(notification.id)
                self.hits += 1
                return event
        event = self._source.decode(notification)
        with self._lock:
            self.misses += 1
            self._decoded[notification.id] = event
            while len(self._decoded) > self._capacity:
                self._decoded.popitem(last=False)
        return event
