"""`ainfera project`: the projector as a standalone worker process, for deployments with
several gateways (run them with AINFERA_PROJECTOR=off) and one or more of these, and as the
child that `ainfera serve` starts by default (app/jobs/projector_process.py). Any number of
workers and gateways may run the same projections at once: a batch locks the positions it
moves (projections.projector), so running two is redundancy, not double counting.

Stops cleanly on SIGTERM or SIGINT after the batch in flight; a worker killed outright loses
only an uncommitted batch, which the next projector applies again from the stored positions.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapters.database import Database
from adapters.store import EventStore
from app.heap import settle_after_start
from app.jobs.projector_process import exit_with_parent
from projections.registry import build_projector

log = logging.getLogger("ainfera.project")

STATUS_EVERY_S = 30.0


def catch_up_once(database: Database, store: EventStore,
                  only: Sequence[str] | None, batch_size: int) -> list[dict[str, Any]]:
    """Applies everything recorded so far, then returns each projection's state."""
    projector = build_projector(database.connect, database.kind, store, only,
                                batch_size=batch_size)
    try:
        projector.catch_up()
        return projector.statuses()
    finally:
        projector.close()


def run_forever(database: Database, store: EventStore, only: Sequence[str] | None,
                batch_size: int, poll_interval: float,
                upkeep: Callable[[], object] | None = None,
                environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Runs until SIGTERM/SIGINT (or, as a child of `ainfera serve`, until that gateway is
    gone); returns each projection's state at the end. `upkeep` (the abandoned-inference
    sweep) runs at start and every STATUS_EVERY_S."""
    projector = build_projector(database.connect, database.kind, store, only,
                                batch_size=batch_size, poll_interval=poll_interval,
                                listen_connect=database.connect,
                                channel=getattr(store.app.recorder, "channel_name", None))
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping after the batches in flight", signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    exit_with_parent(stop, environ or {})
    projector.start()
    settle_after_start()
    log.info("projecting %s", ", ".join(projector.names))
    try:
        while True:
            if upkeep is not None:
                try:
                    upkeep()
                except Exception:
                    log.exception("upkeep failed; retrying in %.0f s", STATUS_EVERY_S)
            if stop.wait(STATUS_EVERY_S):
                break
            for state in projector.statuses():
                log.info("%(projection)s at %(position)d, lag %(lag)d, error %(error)s", state)
    finally:
        projector.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return projector.statuses()
