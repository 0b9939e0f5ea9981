"""CPU per call of the spend path against a real Redis: N concurrent tasks, each a reserve
(awaited) then a `settle_later`, the way every inference uses the counters (or, with
--reserves-only, the reserve alone, then a release outside the measured window).

The base revision's adapters/budget_redis.py and app/services/spend.py are loaded from git next
to the working tree's, and both run in the same process, interleaved, so a loaded shared
machine shifts both alike and the ratio inside one run is what to read.

Run: .venv/bin/python -m bench.redis_spend_bench [--base REV] [--calls N] [--repeat K]
     [--reserves-only]

The two variants swap places every round, so whichever runs second (a warmer heap, a pool
just closed) does not always favour the same one.

Redis comes from AINFERA_BENCH_REDIS_URL, else AINFERA_TEST_REDIS_URL, else
redis://127.0.0.1:6379/0; every key is under a unique prefix that is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import uvloop
from redis.asyncio import Redis

from bench.common import module_at

AMOUNT = Decimal("0.000123")
COST = Decimal("0.0001")


async def _no_ledger(day: Any, wait: float) -> dict[str, Decimal]:
    return {}


async def _floor(concurrency: int, calls: int, upstream_s: float) -> tuple[float, float, int]:
    """The same loop with no Redis at all: what every variant pays besides the counters."""
    per_task = calls // concurrency

    async def worker() -> None:
        for _ in range(per_task):
            await asyncio.sleep(0)
            await asyncio.sleep(upstream_s)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    done = per_task * concurrency
    return cpu / done, done / wall, 0


async def _run(adapter: ModuleType, spend: ModuleType, url: str, prefix: str,
               concurrency: int, calls: int, upstream_s: float,
               settle: bool = True) -> tuple[float, float, int]:
    """(CPU seconds per call, calls per second, settles lost) over `calls` reserve +
    settle_later (or reserves alone, settle False: none is lost then)."""
    # The gateway's own pool (32 connections, 1 s waits), whatever the concurrency.
    counter = adapter.RedisBudgetCounter.from_url(url, prefix=prefix)
    caps = spend.SpendCaps(counter, None, _no_ledger)
    day = datetime.now(UTC).date()
    await counter.rebuild(day, {})
    per_task = calls // concurrency
    tag = uuid.uuid4().hex[:8]
    unsettled = []

    async def worker(n: int) -> None:
        agent = f"agent-{n % 16}"
        for i in range(per_task):
            held = await caps.reserve(agent, day, AMOUNT, None, f"{tag}-{n}-{i}", 60)
            # The upstream call: without it the settles of a closed loop outrun the reserves
            # and starve them of pooled connections, which no gateway does.
            await asyncio.sleep(upstream_s)
            if settle:
                caps.settle_later(held, COST)
            else:
                unsettled.append(held)

    # Warm the pool and the script cache outside the measured window.
    await asyncio.gather(*(caps.reserve("warm", day, AMOUNT, None, f"{tag}-w{n}", 60)
                           for n in range(concurrency)))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    await caps.drain()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    done = per_task * concurrency
    if not settle:
        # A few at a time: thousands at once would wait out the pool's 1 s for a connection.
        for first in range(0, len(unsettled), 16):
            await asyncio.gather(*(counter.release(held)
                                   for held in unsettled[first:first + 16]))
        await counter.aclose()
        return cpu / done, done / wall, 0
    settled = sum([(await counter.usage(f"agent-{n}", day)).settled for n in range(16)],
                  Decimal(0))
    await counter.aclose()
    return cpu / done, done / wall, done - int(settled / COST)


async def _delete_prefix(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="ce8bc40", help="git revision to compare against")
    parser.add_argument("--calls", type=int, default=6400, help="calls per run at the top "
                        "concurrency; lower concurrencies make proportionally fewer, at least 400")
    parser.add_argument("--upstream-ms", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--reserves-only", action="store_true",
                        help="reserve (and sleep) only; no settle_later")
    options = parser.parse_args()
    url = os.environ.get("AINFERA_BENCH_REDIS_URL") or os.environ.get(
        "AINFERA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    import adapters.budget_redis as head_adapter
    import app.services.spend as head_spend

    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory() as scratch:
        base_adapter = module_at(options.base, "adapters/budget_redis.py",
                                      "base_budget_redis", Path(scratch))
        base_spend = module_at(options.base, "app/services/spend.py", "base_spend",
                                    Path(scratch))
        top = max(options.concurrency)
        variants = {"base": (base_adapter, base_spend), "head": (head_adapter, head_spend)}
        what = "reserves" if options.reserves_only else "reserve + settle_later calls"
        print(f"{options.calls} {what} per run at concurrency {top}, upstream "
              f"{options.upstream_ms} ms, base {options.base} vs working tree, {url}")
        print(f"{'round':>5} {'conc':>4} {'variant':>7} {'CPU us/call':>12} {'calls/s':>9} "
              f"{'lost':>5}")
        try:
            for rnd in range(1, options.repeat + 1):
                for concurrency in options.concurrency:
                    figures = {}
                    calls = max(400, options.calls * concurrency // top)
                    order = ("base", "head") if rnd % 2 else ("head", "base")
                    for name in ("floor", *order):
                        if name == "floor":
                            cpu, rate, lost = await _floor(concurrency, calls,
                                                           options.upstream_ms / 1000)
                        else:
                            adapter, spend = variants[name]
                            cpu, rate, lost = await _run(
                                adapter, spend, url, f"{prefix}{name}:", concurrency, calls,
                                options.upstream_ms / 1000, settle=not options.reserves_only)
                        figures[name] = cpu
                        print(f"{rnd:>5} {concurrency:>4} {name:>7} {cpu * 1e6:>12.1f} "
                              f"{rate:>9.0f} {lost:>5}", flush=True)
                    net = ((figures["head"] - figures["floor"])
                           / (figures["base"] - figures["floor"]))
                    print(f"{'':>5} {concurrency:>4} {'ratio':>7} "
                          f"{figures['head'] / figures['base']:>12.2f}  (minus floor: "
                          f"{net:.2f})", flush=True)
        finally:
            await _delete_prefix(url, prefix)


if __name__ == "__main__":
    uvloop.run(main())
