"""PostgreSQL LISTEN/NOTIFY as a wake-up hint for the projector, never as its source.

The event store NOTIFYs its channel on every insert. A listener thread relays that as a nudge,
debounced: every commit notifies, and a burst becomes one wake-up at most NUDGE_GAP_S late. A
lost notification costs at most one poll interval, never a stall, because the projector polls
regardless (eventsourcing issue 305). A dropped connection is re-opened with back-off; the
projector keeps polling meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from psycopg import sql

from projections.view import Connect

log = logging.getLogger("ainfera.projections")

LISTEN_TIMEOUT_S = 1.0
NUDGE_GAP_S = 0.05
MAX_BACKOFF_S = 5.0


class WakeUpListener:
    """Calls `wake` soon after events are written, from its own thread and connection."""

    def __init__(self, connect: Connect, channel: str, wake: Callable[[], None]) -> None:
        self._connect = connect
        self._channel = channel
        self._wake = wake
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._listen, name="projection-listen",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(LISTEN_TIMEOUT_S + timeout)

    def _listen(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                conn = self._connect()
                try:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    backoff = 0.5
                    self._relay(conn)
                finally:
                    conn.close()
            except Exception as exc:
                log.warning("projection wake-up listener failed (%s); polling meanwhile", exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _relay(self, conn: Any) -> None:
        last = 0.0
        pending = False
        while not self._stopping.is_set():
            # Wakes at least every LISTEN_TIMEOUT_S to notice a stop; a notification's
            # payload is irrelevant, only that events were written.
            timeout = (max(last + NUDGE_GAP_S - time.monotonic(), 0.0) if pending
                       else LISTEN_TIMEOUT_S)
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pending = True
            if pending and time.monotonic() - last >= NUDGE_GAP_S:
                self._wake()
                last = time.monotonic()
                pending = False
