"""The servers under test, each started on the server core (bench/pinning.py) in front of the
same fake upstream: the gateway (through tests/harness/gateway.py, in its default topology: the
projector in a child process it supervises), the stack floor (bench/floor_server.py) and the
LiteLLM proxy (bench/litellm_peer.py). Each is yielded with what the CPU meter watches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import httpx

from bench.common import ROOT, FakeServer, children_matching
from bench.cpu import Watched
from bench.pinning import Pinning, allowed, descendants
from tests.harness.gateway import AINFERA, Gateway, free_port, run_gateway, scratch_database

if TYPE_CHECKING:
    from tests.fakes.upstream import FakeUpstream

THREAD_NAMES = ROOT / "bench" / "threadnames"


@dataclass
class Store:
    """Where a gateway keeps its events and its spend counters."""

    kind: str  # "postgres" | "sqlite"
    label: str  # as the report names it
    postgres_url: str = ""
    redis_url: str | None = None


@dataclass
class Running:
    """A server under test: where to send requests, and which processes are its."""

    label: str
    url: str
    pid: int
    key: str = ""
    env: dict[str, str] = field(default_factory=dict)  # a gateway's settings, for its CLI
    tree: bool = False  # the floor and LiteLLM: any worker they fork counts as theirs
    affinity: dict[str, str] = field(default_factory=dict)

    def projector_pid(self) -> int | None:
        """The gateway's projector child (`... project`), looked up afresh: the supervisor
        restarts it under a new pid if it dies."""
        for pid in descendants(self.pid)[1:]:
            if " project" in _cmdline(pid):
                return pid
        return None

    def watched(self, fake: FakeServer, threads: bool = True) -> list[Watched]:
        server = [Watched(self.label, self.pid, tree=self.tree, threads=threads)]
        projector = None if self.tree else self.projector_pid()
        if projector is not None:
            server.append(Watched("projector", projector, threads=threads))
        return [*server, Watched("loadgen", os.getpid()), Watched("fake", fake.pid)]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmd:
            return cmd.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class _RemoteFake:
    """What run_gateway reads of a FakeUpstream (its base_url), for one in another process."""

    def __init__(self, fake: FakeServer) -> None:
        self.base_url = fake.base_url


@contextmanager
def gateway(store: Store, fake: FakeServer, tmp: Path, pinning: Pinning) -> Iterator[Running]:
    """`ainfera serve` on a fresh database (and a fresh Redis key prefix), projector in its
    supervised child process (AINFERA_PROJECTOR=process, the default, named so a change of
    default does not silently change what the rows measure)."""
    env = {
        "AINFERA_PROJECTOR": "process",
        # Names the gateway's (and its projector's) threads for /proc: see bench/cpu.py.
        "PYTHONPATH": os.pathsep.join(p for p in (str(THREAD_NAMES),
                                                  os.environ.get("PYTHONPATH", "")) if p),
    }
    prefix = f"ainfera-bench:{uuid.uuid4().hex[:12]}:"
    if store.redis_url:
        env |= {"AINFERA_REDIS_URL": store.redis_url, "AINFERA_REDIS_PREFIX": prefix}
    fake_upstream = cast("FakeUpstream", _RemoteFake(fake))
    try:
        with ExitStack() as stack:
            url = stack.enter_context(scratch_database(store.kind, tmp, store.postgres_url))
            with pinning.spawning_server():
                gw: Gateway = stack.enter_context(run_gateway(url, fake_upstream, tmp, env))
            pids = children_matching("ainfera serve")
            if len(pids) != 1:
                raise RuntimeError(f"expected one `ainfera serve` child, found {pids}")
            settings = {**env, "AINFERA_DATABASE_URL": gw.database_url,
                        "AINFERA_SIGNING_KEY_FILE": gw.signing_key_file,
                        "AINFERA_CONFIG": str(tmp / "ainfera.toml")}
            running = Running("gateway", gw.url, pids[0], gw.key, settings)
            pinning.pin_server_tree(running.pid)
            running.affinity["gateway"] = allowed(running.pid)
            projector = running.projector_pid()
            running.affinity["projector"] = allowed(projector) if projector else "not running"
            yield running
    finally:
        if store.redis_url:
            _forget_redis_keys(store.redis_url, prefix)


@dataclass(frozen=True)
class Verified:
    ok: bool
    seconds: float
    said: str  # its last line of output (or why it did not finish)


def verify(gw: Running, pinning: Pinning, wait: float) -> Verified:
    """`ainfera verify` on a gateway's store and counters (rebuilds every read model into scratch
    tables and diffs them, checks the ledger and the Redis counters), on the server core."""
    began = time.perf_counter()
    with pinning.spawning_server():
        proc = subprocess.Popen(  # noqa: S603 - the project's own CLI
            [AINFERA, "verify"], env={**os.environ, **gw.env}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return Verified(False, time.perf_counter() - began, f"did not finish in {wait:.0f} s")
    lines = [line for line in out.splitlines() if line.strip()]
    return Verified(proc.returncode == 0, time.perf_counter() - began,
                    lines[-1] if lines else f"exit {proc.returncode}")


def _forget_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextmanager
def server_process(label: str, command: list[str], env: dict[str, str], cwd: Path, log: Path,
             ready: str, pinning: Pinning, timeout: float) -> Iterator[Running]:
    """A server process started on the server core, yielded once `ready` (a path) answers
    200, stopped with SIGTERM (then SIGKILL) afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        with pinning.spawning_server():
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter, or the pinned LiteLLM
                [*command, "--port", str(port)], cwd=cwd, env=env, stdout=out,
                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(f"{url}{ready}", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-2000:]
                    raise RuntimeError(f"{label} did not become ready:\n{tail}")
                time.sleep(0.2)
            running = Running(label, url, proc.pid, tree=True)
            pinning.pin_server_tree(proc.pid)
            running.affinity[label] = allowed(proc.pid)
            yield running
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


@contextmanager
def floor(fake: FakeServer, tmp: Path, pinning: Pinning) -> Iterator[Running]:
    command = [sys.executable, "-m", "bench.floor_server", "--upstream", fake.base_url]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(THREAD_NAMES), str(ROOT)))}
    with server_process("floor", command, env, ROOT, tmp / "floor.log", "/healthz", pinning,
                        60) as running:
        yield running
