"""PostgreSQL LISTEN/NOTIFY as a wake-up hint for the projector, never as its source.

The event store NOTIFYs its channel on every insert. A listener thread relays that as a nudge,
debounced: every commit notifies, and a burst becomes one wake-up at most NUDGE_GAP_S late. A
lost notification costs at most one poll interval, never a stall, because the projector polls
regardless (eventsourcing issue 305). A dropped connection is re-opened with back-off; the
projector keeps polling meanwhile.

A second channel (`wanted_channel`) carries a reader's request: a gateway whose projector runs
in another process NOTIFYs it while a consistent read waits, and the listener relays it at once
as `urgent`, so the reader is not made to wait out the projector's coalescing window.
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


def wanted_channel(channel: str) -> str:
    """The channel a waiting reader NOTIFYs to ask for a pass now."""
    return f"{channel}_wanted"


def ask_for_pass(conn: Any, channel: str) -> None:
    """Tells whichever projector listens on `channel` that a reader is waiting."""
    conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(wanted_channel(channel))))


class WakeUpListener:
    """Calls `wake` soon after events are written, and `urgent` when a reader asks for a pass
    (`ask_for_pass`), from its own thread and connection."""

    def __init__(self, connect: Connect, channel: str, wake: Callable[[], None],
                 urgent: Callable[[], None] | None = None) -> None:
        self._connect = connect
        self._channel = channel
        self._wake = wake
        self._urgent = urgent
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
                    if self._urgent is not None:
                        conn.execute(sql.SQL("LISTEN {}").format(
                            sql.Identifier(wanted_channel(self._channel))))
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
            for notify in conn.notifies(timeout=timeout, stop_after=1):
                if self._urgent is not None and notify.channel != self._channel:
                    self._urgent()
                else:
                    pending = True
            if pending and time.monotonic() - last >= NUDGE_GAP_S:
                self._wake()
                last = time.monotonic()
                pending = False
