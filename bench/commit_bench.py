"""Benchmark 3: group commit against one save per call, on SQLite and PostgreSQL.

Every inference is the gateway's write pattern: Routed saved alone first (the write-ahead
audit), then Dispatched, Streamed, Completed and Debited saved together. Group commit sends
them through GroupCommitWriter from N concurrent asyncio tasks; the naive baselines call
EventStore.save_events once per save, sequentially or from 8 threads.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg

from adapters.database import Database
from adapters.store import EventStore
from adapters.writer import GroupCommitWriter
from bench.common import Section
from domain.context import audit_context
from domain.inference import Inference

_numbers = itertools.count()


def routed() -> tuple[Inference, int]:
    n = next(_numbers)
    with audit_context(f"tenant-{n % 3}", f"agent-{n % 5}", f"req-{n}"):
        inference = Inference(
            api="messages", requested_model="ainfera-inference", router="ainfera-inference",
            alias_hit=None,
            candidates=[{"model": "fake-claude", "provider": "anthropic", "quality": "0.80",
                         "est_cost_usd": "0.001", "eligible": True, "cleared_floor": True,
                         "rejection_reason": None}],
            chosen_model="fake-claude", policy={"min_quality": "0.50"},
            ruleset_hash="sha256:" + "0" * 64, stream=n % 2 == 0, tools=0,
            request_digest=f"sha256:{n:064x}",
        )
    return inference, n


def finish(inference: Inference, n: int) -> None:
    with audit_context(f"tenant-{n % 3}", f"agent-{n % 5}", f"req-{n}"):
        inference.dispatch("anthropic", "up-claude", f"up-{n}", None)
        inference.record_stream(50, 9, 900)
        inference.complete("succeeded", "end_turn", {"input_tokens": 12, "output_tokens": 7,
                                                     "cache_read": None, "cache_write": None},
                           60, "sha256:" + "1" * 64)
        inference.debit(Decimal("0.000141"), "v1", f"res-{n}")


def naive(store: EventStore, duration: float, threads: int) -> int:
    """One transaction per save (two per inference), from `threads` threads."""
    deadline = time.perf_counter() + duration
    lock = threading.Lock()
    done = [0]

    def loop() -> None:
        count = 0
        while time.perf_counter() < deadline:
            inference, n = routed()
            store.save_events(inference.collect_events())
            finish(inference, n)
            store.save_events(inference.collect_events())
            count += 1
        with lock:
            done[0] += count

    if threads == 1:
        loop()
    else:
        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(loop) for _ in range(threads)]:
                future.result()
    return done[0]


async def grouped(writer: GroupCommitWriter, duration: float, tasks: int) -> int:
    deadline = time.perf_counter() + duration
    done = 0

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            inference, n = routed()
            await writer.save(inference)
            finish(inference, n)
            await writer.save(inference)
            done += 1

    await asyncio.gather(*(loop() for _ in range(tasks)))
    return done


@contextmanager
def fresh_store(kind: str, tmp: Path, postgres_url: str) -> Iterator[EventStore]:
    if kind == "sqlite":
        store = EventStore(Database.from_url(f"sqlite:///{tmp}/commit-{uuid.uuid4().hex}.db"))
        try:
            yield store
        finally:
            store.close()
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in postgres_url else "?"
        store = EventStore(Database.from_url(f"{postgres_url}{sep}schema={schema}"))
        try:
            yield store
        finally:
            store.close()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_commit_benchmark(tmp: Path, postgres_url: str | None, runner: asyncio.Runner,
                         duration: float = 4.0, tasks: int = 64) -> Section:
    began = time.perf_counter()
    section = Section(
        f"Group commit (inferences of 5 events: Routed, then 4; {duration:g} s per row)",
        ["db", "mode", "inferences/s", "events/s", "vs naive sequential", "batches",
         "mean submissions/batch", "largest batch"],
    )
    kinds = [("sqlite", "SQLite")] + ([("postgres", "PostgreSQL")] if postgres_url else [])
    for kind, label in kinds:
        base = 0.0
        runs: list[tuple[str, Callable[[EventStore], tuple[int, str, str, str]]]] = [
            ("naive, 1 save_events per save, sequential",
             lambda s: (naive(s, duration, 1), "-", "-", "-")),
            ("naive, 1 save_events per save, 8 threads",
             lambda s: (naive(s, duration, 8), "-", "-", "-")),
            ("GroupCommitWriter, 1 task", lambda s: _grouped(s, runner, duration, 1)),
            (f"GroupCommitWriter, {tasks} tasks",
             lambda s: _grouped(s, runner, duration, tasks)),
        ]
        for mode, fn in runs:
            with fresh_store(kind, tmp, postgres_url or "") as store:
                _warm(store)
                start = time.perf_counter()
                count, batches, mean, largest = fn(store)
                rate = count / (time.perf_counter() - start)
            if not base:
                base = rate
            section.add(label, mode, f"{rate:,.0f}", f"{rate * 5:,.0f}", f"{rate / base:.2f}x",
                        batches, mean, largest)
            print(f"  [{label}] {mode}: {rate:,.0f} inferences/s", flush=True)
    section.notes.append(
        "each inference = 2 saves (Routed alone, then Dispatched+Streamed+Completed+Debited); "
        "naive modes commit each save in its own transaction; ratios are against the naive "
        "sequential row of the same database.")
    section.seconds = time.perf_counter() - began
    return section


def _warm(store: EventStore) -> None:
    inference, n = routed()
    store.save_events(inference.collect_events())
    finish(inference, n)
    store.save_events(inference.collect_events())


def _grouped(store: EventStore, runner: asyncio.Runner, duration: float,
             tasks: int) -> tuple[int, str, str, str]:
    writer = GroupCommitWriter(store)
    writer.start()
    try:
        count = runner.run(grouped(writer, duration, tasks))
    finally:
        writer.close()
    stats = writer.stats
    mean = stats.submissions / stats.batches if stats.batches else 0.0
    return count, f"{stats.batches:,}", f"{mean:.1f}", str(stats.largest_batch)
