"""The projector as a child of `ainfera serve` (the default topology): the gateway's event loop
never shares a GIL with the read models, the checkpointer or the repair sweep, and `make serve`
still needs no second command.

The child is `ainfera project` itself, started with the gateway's environment; its positions
live in the database, so consistent reads and receipts work across the process boundary. A
child that dies is restarted with back-off (1 s doubling to 30 s, back to 1 s once it has run
for a minute); stopping the gateway stops it (SIGTERM, then SIGKILL after STOP_TIMEOUT_S). A
gateway killed outright leaves no orphan: the child watches its parent (AINFERA_PARENT_PID) and
exits when it is gone.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger("ainfera.projector")

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0
STOP_TIMEOUT_S = 15.0
PARENT_ENV = "AINFERA_PARENT_PID"


def project_command(poll_interval: float) -> list[str]:
    return [sys.executable, "-m", "app.cli.main", "project",
            "--poll-interval", str(poll_interval)]


class ProjectorProcess:
    def __init__(self, command: Sequence[str], environ: Mapping[str, str]) -> None:
        self._command = list(command)
        self._environ = {**environ, PARENT_ENV: str(os.getpid())}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self.last_exit: int | None = None

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="projector-supervisor",
                                        daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        backoff = MIN_BACKOFF_S
        while not self._stopping.is_set():
            started = time.monotonic()
            with self._lock:
                if self._stopping.is_set():
                    return
                self._child = subprocess.Popen(self._command, env=self._environ)  # noqa: S603
            log.info("projector process started (pid %d)", self._child.pid)
            code = self._child.wait()
            self.last_exit = code
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                backoff = MIN_BACKOFF_S
            log.error("projector process exited with %d; restarting in %.0f s", code, backoff)
            self.restarts += 1
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.error("projector process did not stop in %.0f s; killing it",
                          STOP_TIMEOUT_S)
                child.kill()
                child.wait()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)


def exit_with_parent(stop: threading.Event, environ: Mapping[str, str]) -> None:
    """In the child: sets `stop` once the gateway that started it is gone (its parent pid
    changes), so a gateway killed with SIGKILL leaves no projector behind."""
    parent = environ.get(PARENT_ENV)
    if not parent:
        return

    def watch() -> None:
        while not stop.wait(1.0):
            if str(os.getppid()) != parent:
                log.warning("the gateway (pid %s) is gone; stopping", parent)
                stop.set()
                return

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
