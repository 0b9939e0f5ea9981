"""CPU accounting from /proc: by process (optionally its whole tree) and by thread, between two
points of a run, so each figure can be given as CPU milliseconds per request and the next
regression shows up in the process or thread that caused it.

Thread names are the kernel's (`/proc/PID/task/TID/comm`, 15 characters). Python 3.11 does not
pass its thread names to the kernel, so the bench starts the gateway with
bench/threadnames/sitecustomize.py on its path, which does; threads of one pool
(`asyncio_0`, `asyncio_1`, ...) are added up under one name (`asyncio_*`).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

from bench.pinning import descendants

_TICK = os.sysconf("SC_CLK_TCK")
_POOL_SUFFIX = re.compile(r"[_-]?\d+$")

ProcSample = dict[str, dict[int, float]]  # label -> pid -> CPU seconds
TaskSample = dict[str, dict[int, tuple[str, float]]]  # label -> tid -> (name, CPU seconds)


def _stat_cpu(path: str) -> float:
    """utime + stime of a /proc/.../stat file, in seconds (0 when the task is gone)."""
    try:
        with open(path) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by every thread of one process."""
    return _stat_cpu(f"/proc/{pid}/stat")


def _threads(pid: int) -> dict[int, tuple[str, float]]:
    found: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as comm:
                name = comm.read().strip()
        except OSError:
            continue
        found[int(tid)] = (name, _stat_cpu(f"/proc/{pid}/task/{tid}/stat"))
    return found


def thread_group(pid: int, tid: int, name: str) -> str:
    if tid == pid:
        return "main"
    return _POOL_SUFFIX.sub("_*", name) if _POOL_SUFFIX.search(name) else name


@dataclass(frozen=True)
class Watched:
    """One process to account for. `tree`: add up its descendants too (servers that fork
    workers); `threads`: also keep its per-thread breakdown."""

    label: str
    pid: int
    tree: bool = False
    threads: bool = False


@dataclass
class CpuUsage:
    """CPU seconds used between start() and stop() of a CpuMeter, over `wall` seconds."""

    wall: float
    seconds: dict[str, float] = field(default_factory=dict)
    threads: dict[str, dict[str, float]] = field(default_factory=dict)

    def share(self, label: str) -> float:
        """As a share of one core (1.0 = one core busy the whole time)."""
        return self.seconds.get(label, 0.0) / self.wall if self.wall else 0.0

    def ms_per(self, label: str, count: int) -> float:
        return self.seconds.get(label, 0.0) * 1000 / count if count else float("nan")

    def describe_shares(self) -> str:
        return " ".join(f"{label} {self.share(label) * 100:.0f}%" for label in self.seconds)

    def describe_per_request(self, count: int) -> str:
        return " ".join(f"{label} {self.ms_per(label, count):.2f}" for label in self.seconds)


class CpuMeter:
    def __init__(self, watched: list[Watched]) -> None:
        self.watched = watched
        self._began = 0.0
        self._proc: ProcSample = {}
        self._tasks: TaskSample = {}

    def _sample(self) -> tuple[ProcSample, TaskSample]:
        procs: ProcSample = {}
        tasks: TaskSample = {}
        for w in self.watched:
            pids = descendants(w.pid) if w.tree else [w.pid]
            procs[w.label] = {pid: process_cpu(pid) for pid in pids}
            if w.threads:
                tasks[w.label] = _threads(w.pid)
        return procs, tasks

    def start(self) -> None:
        self._proc, self._tasks = self._sample()
        self._began = time.perf_counter()

    def stop(self) -> CpuUsage:
        wall = time.perf_counter() - self._began
        procs, tasks = self._sample()
        usage = CpuUsage(wall)
        for w in self.watched:
            before = self._proc.get(w.label, {})
            # A process that started after start() counts from zero; one that ended is lost
            # (its time goes to its parent only once reaped), which the servers here never do
            # mid-row unless they crash, and then the row shows errors anyway.
            usage.seconds[w.label] = sum(cpu - before.get(pid, 0.0)
                                         for pid, cpu in procs[w.label].items())
            if w.threads:
                groups: dict[str, float] = {}
                earlier = self._tasks.get(w.label, {})
                for tid, (name, cpu) in tasks[w.label].items():
                    group = thread_group(w.pid, tid, name)
                    spent = cpu - earlier.get(tid, (name, 0.0))[1]
                    groups[group] = groups.get(group, 0.0) + spent
                usage.threads[w.label] = dict(sorted(groups.items(), key=lambda kv: -kv[1]))
        return usage
