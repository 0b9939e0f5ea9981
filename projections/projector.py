"""Every registered projection running in one process (a gateway, or `ainfera project`): one
thread per projection, so a slow or failing read model never holds the others back, and on
PostgreSQL one LISTEN connection whose notifications wake them all early.

The event store NOTIFYs its channel on every insert. A lost notification costs at most one
poll interval, never a stall: the runners poll regardless (eventsourcing issue 305).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from psycopg import sql

from projections.runner import ProjectionRunner, describe
from projections.view import Connect

log = logging.getLogger("ainfera.projections")

LISTEN_TIMEOUT_S = 1.0
NUDGE_GAP_S = 0.05


class Projector:
    def __init__(self, runners: Sequence[ProjectionRunner], *,
                 listen_connect: Connect | None = None, channel: str | None = None) -> None:
        self.runners = list(runners)
        self._listen_connect = listen_connect if channel else None
        self._channel = channel
        self._stopping = threading.Event()
        self._listener: threading.Thread | None = None

    def runner(self, name: str) -> ProjectionRunner | None:
        return next((r for r in self.runners if r.name == name), None)

    def start(self) -> None:
        self._stopping.clear()
        for runner in self.runners:
            runner.start()
        if self._listen_connect is not None and self._channel is not None:
            self._listener = threading.Thread(
                target=self._listen, args=(self._listen_connect, self._channel),
                name="projection-listen", daemon=True)
            self._listener.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        for runner in self.runners:
            runner.stop(timeout)
        if self._listener is not None:
            self._listener.join(LISTEN_TIMEOUT_S + timeout)

    def nudge(self) -> None:
        for runner in self.runners:
            runner.nudge()

    def status(self) -> list[dict[str, Any]]:
        return [describe(r) for r in self.runners]

    def _relay_notifications(self, conn: Any) -> None:
        """Wakes the runners when events were written, at most once per NUDGE_GAP_S: every
        commit notifies, and waking six runners per commit costs more than the batches they
        then run; a burst becomes one wake-up, at most NUDGE_GAP_S late."""
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
                self.nudge()
                last = time.monotonic()
                pending = False

    def _listen(self, connect: Connect, channel: str) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                conn = connect()
                try:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    backoff = 0.5
                    self._relay_notifications(conn)
                finally:
                    conn.close()
            except Exception as exc:
                log.warning("projection wake-up listener failed (%s); polling meanwhile", exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)
