"""CPU and wall time of one PostgreSQL event commit: the library's insert (a pipelined
transaction of SET LOCAL, LOCK TABLE, NOTIFY, INSERT, COMMIT) against ours (one prepared call
of a PL/pgSQL function doing the same), in one process, blocks of each alternating so that a
shared, loaded machine weighs on both alike.

Run: .venv/bin/python -m bench.pg_commit_cpu [--commits 2000] [--block 250] [POSTGRES_URL]

Two levels: `save_events` is what the writer thread calls per commit (the library's mapper,
JSON encoding, Recording objects, then the recorder); `insert_events` is the recorder alone,
with the stored events mapped beforehand.
"""

from __future__ import annotations

import argparse
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from adapters.pg_recorder import _once_more_on_a_dead_connection
from adapters.store import EventStore
from bench.commit_bench import finish, fresh_store, routed

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def commits(count: int, events_per_commit: int) -> list[list[DomainEventProtocol[Any]]]:
    """`count` commits of new inferences: Routed alone, or Routed and the events after it."""
    batches = []
    for _ in range(count):
        inference, n = routed()
        if events_per_commit > 1:
            finish(inference, n)
        events: list[Any] = list(inference.collect_events())[:events_per_commit]
        assert len(events) == events_per_commit
        batches.append(events)
    return batches


def measure(fn: Callable[[Any], object], items: Sequence[Any]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for item in items:
        fn(item)
    return time.process_time() - cpu, time.perf_counter() - wall


def run(store: EventStore, total: int, block: int, per_commit: int) -> None:
    recorder = store.app.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    library = types.MethodType(
        _once_more_on_a_dead_connection(PostgresApplicationRecorder.insert_events), recorder)
    ours = recorder.insert_events
    mapper = store.app.mapper

    def with_library(events: list[DomainEventProtocol[Any]]) -> object:
        recorder.insert_events = library
        try:
            return store.save_events(events)
        finally:
            del recorder.insert_events

    paths: dict[str, dict[str, Callable[[Any], object]]] = {
        "save_events": {"library": with_library, "ours": store.save_events},
        "insert_events": {"library": library, "ours": ours},
    }
    for level, fns in paths.items():
        for fn in fns.values():  # prepared statements, plan caches, pool connections
            for events in commits(20, per_commit):
                fn(events if level == "save_events"
                   else [mapper.to_stored_event(e) for e in events])
        sums = {name: [0.0, 0.0] for name in fns}
        for _ in range(total // block):
            for name, fn in fns.items():
                batches = commits(block, per_commit)
                items: list[Any] = batches
                if level == "insert_events":
                    stored: list[list[StoredEvent]] = [
                        [mapper.to_stored_event(e) for e in b] for b in batches]
                    items = stored
                cpu, wall = measure(fn, items)
                sums[name][0] += cpu
                sums[name][1] += wall
        n = block * (total // block)
        lib_cpu, lib_wall = (x / n * 1e3 for x in sums["library"])
        our_cpu, our_wall = (x / n * 1e3 for x in sums["ours"])
        print(f"{level:13} {per_commit} event(s)/commit, {n} commits each: "
              f"library {lib_cpu:.3f} ms CPU {lib_wall:.3f} ms wall | "
              f"ours {our_cpu:.3f} ms CPU {our_wall:.3f} ms wall | "
              f"CPU x{lib_cpu / our_cpu:.2f}, wall x{lib_wall / our_wall:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default=DEFAULT_URL)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--block", type=int, default=250)
    args = parser.parse_args()
    with fresh_store("postgres", Path(), args.url) as store:  # a PostgreSQL store needs no dir
        for per_commit in (1, 4):
            run(store, args.commits, args.block, per_commit)


if __name__ == "__main__":
    main()
