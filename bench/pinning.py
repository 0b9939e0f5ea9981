"""Core pinning: the server under test (gateway and its projector child, the floor, LiteLLM) on
one core, the load generator and the fake upstream on the other, as the issue's measurements
did, so the client side never steals the server's core and the figures compare like for like.

Affinity is inherited at fork, and on Linux it belongs to a thread: `spawning_on` narrows the
calling thread's affinity while a server is started (so the server and every child it forks
later, such as the projector, start pinned), then restores it. `pin_tree` re-applies the mask
to every thread of a process tree afterwards (a thread started before the mask was set keeps
its own), and `allowed` reads back what the kernel actually holds, for the report.

PostgreSQL and Redis are services of the machine, shared with everything else on it: they are
never re-pinned here and float over both cores.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pinning:
    """Which cores the server under test and the client side (load generator, fake upstream)
    run on; both empty when the machine has a single usable core and nothing is pinned."""

    server: frozenset[int]
    client: frozenset[int]
    everything: frozenset[int] = frozenset()  # the cores this process could use at start

    @property
    def active(self) -> bool:
        return bool(self.server and self.client)

    @classmethod
    def plan(cls, enabled: bool = True) -> Pinning:
        cores = sorted(os.sched_getaffinity(0))
        if not enabled or len(cores) < 2:
            return cls(frozenset(), frozenset(), frozenset(cores))
        # The first usable core serves, the rest (one on a 2-core box) load: the server is the
        # single-worker process under test, the client side is two processes that use little.
        return cls(frozenset(cores[:1]), frozenset(cores[1:]), frozenset(cores))

    def describe(self) -> str:
        if not self.active:
            return "no core pinning (fewer than two usable cores, or --no-pin)"
        return (f"server under test on core {_cores(self.server)}, load generator and fake "
                f"upstream on core {_cores(self.client)}")

    def pin_self(self) -> None:
        """This process (the load generator) onto the client cores, before it starts anything
        that should inherit them (the fake upstream, the asyncio default executor)."""
        if self.active:
            os.sched_setaffinity(0, self.client)

    def unpin_self(self) -> None:
        """Back to every core, for the benchmarks that measure one process alone (group
        commit, ledger math), as they always ran."""
        if self.active:
            os.sched_setaffinity(0, self.everything)

    @contextmanager
    def spawning_server(self) -> Iterator[None]:
        """Processes started inside this block start on the server cores."""
        if not self.active:
            yield
            return
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.server)
        try:
            yield
        finally:
            os.sched_setaffinity(0, before)

    def pin_server_tree(self, pid: int) -> None:
        if self.active:
            for task in tree_tasks(pid):
                # A thread may end between the listing and the call.
                with contextlib.suppress(ProcessLookupError):
                    os.sched_setaffinity(task, self.server)


def _cores(cores: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cores))


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, parents first (from each process's ppid in
    /proc/*/stat: this kernel has no /proc/PID/task/TID/children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = parent_pid(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue += children.get(current, [])
    return found


def parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def tree_tasks(pid: int) -> list[int]:
    """Every thread id of `pid` and its descendants."""
    return [task for proc in descendants(pid) for task in _tasks(proc)]


def _tasks(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def allowed(pid: int) -> str:
    """The kernel's Cpus_allowed_list of a process, e.g. `0` or `0-1`."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"
