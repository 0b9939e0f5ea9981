"""One fault scenario: a gateway process in front of the fake upstream, on the tier's own
PostgreSQL and Redis, under a bounded load, with `/readyz` watched the whole time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx

from tests.fakes.upstream import FakeUpstream
from tests.faults.load import Load
from tests.harness.gateway import Server, World, prepare_world, serve

CAP = Decimal("0.0100")
# How often /readyz is asked; each answer must come within READY_ANSWER_S.
READY_POLL_S = 0.25
READY_ANSWER_S = 2.0


@dataclass
class Probe:
    at: float
    status: int | None  # None: no answer within READY_ANSWER_S
    took: float
    failing: list[str]


@dataclass
class ReadyWatch:
    """Polls /readyz on its own thread; keeps every answer."""

    url: str
    probes: list[Probe] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ready-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(READY_ANSWER_S + 5)

    def _run(self) -> None:
        with httpx.Client(timeout=READY_ANSWER_S) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    response = client.get(f"{self.url}/readyz")
                    failing = response.json().get("failing", [])
                    self.probes.append(Probe(began, response.status_code,
                                             time.monotonic() - began, failing))
                except (httpx.HTTPError, ValueError):
                    self.probes.append(Probe(began, None, time.monotonic() - began, []))
                self._stop.wait(READY_POLL_S)

    def between(self, start: float, end: float) -> list[Probe]:
        return [p for p in list(self.probes) if start <= p.at <= end]

    def first_ready_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first 200 at or after it."""
        for probe in list(self.probes):
            if probe.at >= moment and probe.status == 200:
                return probe.at - moment
        return None

    def wait_ready(self, since: float, within: float) -> float:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = self.first_ready_after(since)
            if found is not None:
                return found
            time.sleep(0.1)
        recent = [(round(p.at - since, 2), p.status, p.failing) for p in self.probes[-8:]]
        raise AssertionError(f"/readyz not 200 within {within:.0f} s: {recent}")


@dataclass
class Scenario:
    server: Server
    world: World
    load: Load
    ready: ReadyWatch
    fake: FakeUpstream
    database_url: str
    redis_url: str
    prefix: str
    tmp: Path

    @property
    def url(self) -> str:
        return self.server.url

    def alive(self) -> bool:
        return self.server.proc.poll() is None

    def log(self) -> str:
        return self.server.log_path.read_text()


@contextmanager
def scenario(database_url: str, redis_url: str, prefix: str, fake: FakeUpstream, tmp: Path,
             extra_env: dict[str, str] | None = None) -> Iterator[Scenario]:
    world = prepare_world(database_url, daily_cap_usd=str(CAP))
    env = {"AINFERA_REDIS_URL": redis_url, "AINFERA_REDIS_PREFIX": prefix, **(extra_env or {})}
    # Tracebacks are expected in the log while a server is down (the parts that retry log
    # why); a 500 is not, and the tests look for that instead.
    with serve(database_url, fake, tmp, env, allow_crash=True) as server:
        ready = ReadyWatch(server.url)
        load = Load(server.url, [world.key, world.other_key])
        ready.start()
        load.start()
        try:
            yield Scenario(server, world, load, ready, fake, database_url, redis_url, prefix,
                           tmp)
        finally:
            load.stop()
            ready.stop()
