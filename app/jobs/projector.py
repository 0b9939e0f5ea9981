"""`ainfera project`: the projection runners as a standalone worker process, for deployments
with several gateways (run them with AINFERA_PROJECTOR=off) and one or more of these, and as
the child that `ainfera serve` starts by default (app/jobs/projector_process.py). Any number
of workers and gateways may run the same projections at once: batches that lose a race roll
back (projections.runner), so running two is redundancy, not double counting.

Stops cleanly on SIGTERM or SIGINT after the batches in flight; a worker killed outright loses
only uncommitted batches, which the next runner applies again from the stored position.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapters.database import Database
from adapters.store import EventStore
from app.jobs.projector_process import exit_with_parent
from projections.projector import Projector
from projections.registry import build_runners
from projections.runner import describe

log = logging.getLogger("ainfera.project")

STATUS_EVERY_S = 30.0


def catch_up_once(database: Database, store: EventStore,
                  only: Sequence[str] | None, batch_size: int) -> list[dict[str, Any]]:
    """Applies everything recorded so far, then returns each projection's state."""
    runners = build_runners(database.connect, database.kind, store, only,
                            batch_size=batch_size)
    states = []
    for runner in runners:
        try:
            runner.catch_up()
            states.append(describe(runner))
        finally:
            runner.view.close()
    return states


def run_forever(database: Database, store: EventStore, only: Sequence[str] | None,
                batch_size: int, poll_interval: float,
                upkeep: Callable[[], object] | None = None,
                environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Runs until SIGTERM/SIGINT (or, as a child of `ainfera serve`, until that gateway is
    gone); returns each projection's state at the end. `upkeep` (the abandoned-inference
    sweep) runs at start and every STATUS_EVERY_S."""
    runners = build_runners(database.connect, database.kind, store, only,
                            batch_size=batch_size, poll_interval=poll_interval)
    projector = Projector(runners, listen_connect=database.connect,
                          channel=getattr(store.app.recorder, "channel_name", None))
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping after the batches in flight", signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    exit_with_parent(stop, environ or {})
    projector.start()
    log.info("projecting %s", ", ".join(r.name for r in runners))
    try:
        while True:
            if upkeep is not None:
                try:
                    upkeep()
                except Exception:
                    log.exception("upkeep failed; retrying in %.0f s", STATUS_EVERY_S)
            if stop.wait(STATUS_EVERY_S):
                break
            for state in projector.status():
                log.info("%(projection)s at %(position)d, lag %(lag)d, error %(error)s", state)
    finally:
        projector.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return projector.status()
