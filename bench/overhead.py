"""Load rows: closed-loop POST /v1/messages against one server under test, with the CPU of every
process involved (and the threads of the server and its projector) measured over exactly the
counted requests, and the gateway's projection lag sampled while the load runs.

`LoadBench.measure` runs one target at each concurrency of the plan; `LoadBench.lag_run` is the
long 64-connection load whose lag (during, and the time to 0 after) the report quotes, with the
projector's CPU counted until it has caught up.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.common import FakeServer, percentile
from bench.cpu import CpuMeter, CpuUsage, Watched
from bench.lag import LagSeries, sample_until, time_to_zero
from bench.loadgen import LoadResult, closed_loop
from bench.plan import Plan
from bench.servers import Running
from bench.targets import Target

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]


@dataclass
class Row:
    """One load row: a target at one concurrency."""

    name: str  # floor, gateway pinned, gateway routed, LiteLLM, direct
    store: str  # "-" or where the gateway keeps events and counters
    conc: int
    result: LoadResult
    cpu: CpuUsage | None = None
    server: str = ""  # the CPU label of the server under test ("gateway", "floor", ...)
    lag_events: tuple[int, str] = (0, "-")
    lag_seconds: float = 0.0

    @property
    def rps(self) -> float:
        return self.result.rps

    @property
    def p50(self) -> float:
        return percentile(self.result.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.result.latencies, 99)

    def server_ms(self) -> float:
        """CPU ms per request of the server under test, its projector child included."""
        if self.cpu is None or not self.server:
            return math.nan
        spent = self.cpu.seconds.get(self.server, 0.0) + self.cpu.seconds.get("projector", 0.0)
        return spent * 1000 / self.result.requests if self.result.requests else math.nan


@dataclass
class LagRun:
    """The long load: its row, the lag through it, and how the projector kept up."""

    row: Row
    series: LagSeries
    began: float
    ended: float
    time_to_zero: float | None
    settled_before: float | None  # seconds the lag took to reach 0 before the load began
    through_catch_up: CpuUsage | None = None  # CPU from the load's start until lag 0
    notes: list[str] = field(default_factory=list)

    def projector_ms_per_inference(self) -> float:
        usage = self.through_catch_up
        requests = self.row.result.requests
        if usage is None or not requests or "projector" not in usage.seconds:
            return math.nan
        return usage.seconds["projector"] * 1000 / requests


class LoadBench:
    def __init__(self, plan: Plan, run: Run[Any], fake: FakeServer) -> None:
        self.plan = plan
        self.run = run
        self.fake = fake

    def measure(self, target: Target, name: str, store: str, server: Running | None,
                concurrency: tuple[int, ...] | None = None) -> list[Row]:
        rows = []
        for conc in concurrency or self.plan.concurrency:
            row = self.run(self._row(target, name, store, server, conc))
            rows.append(row)
            cpu = row.cpu.describe_per_request(row.result.requests) if row.cpu else ""
            print(f"  {name} [{store}] c{conc}: {row.rps:,.0f} req/s p50 "
                  f"{row.p50 * 1000:.1f} ms errors {row.result.errors} (CPU ms/req: {cpu})",
                  flush=True)
        return rows

    async def _row(self, target: Target, name: str, store: str, server: Running | None,
                   conc: int) -> Row:
        meter = CpuMeter(server.watched(self.fake) if server is not None
                         else [Watched("loadgen", os.getpid()), Watched("fake", self.fake.pid)])
        usage: list[CpuUsage] = []
        lag_url = server.url if server is not None and server.label == "gateway" else None
        stop = asyncio.Event()
        series = LagSeries([])
        sampler = (asyncio.create_task(sample_until(lag_url, stop, self.plan.lag_period, series))
                   if lag_url else None)
        window: list[float] = []

        def mark(begin: bool) -> None:
            window.append(time.perf_counter())
            if begin:
                meter.start()
            else:
                usage.append(meter.stop())

        try:
            result = await closed_loop(target.url, target.headers, target.body, conc,
                                       self.plan.duration, self.plan.warmup, window=mark)
        finally:
            stop.set()
            if sampler is not None:
                await sampler
        row = Row(name, store, conc, result, usage[0] if usage else None,
                  server.label if server is not None else "")
        if series.samples and len(window) == 2:
            row.lag_events = series.events_behind(window[0], window[1])
            row.lag_seconds = series.seconds_behind_max(window[0], window[1])
        return row

    def lag_run(self, target: Target, name: str, store: str, server: Running) -> LagRun:
        outcome: LagRun = self.run(self._lag_run(target, name, store, server))
        return outcome

    async def _lag_run(self, target: Target, name: str, store: str,
                       server: Running) -> LagRun:
        series = LagSeries([])
        # Start from a caught-up read side, so every event projected until the lag is 0 again
        # comes from this load's requests (no warm-up either): CPU per inference is then exact.
        settled = await time_to_zero(server.url, LagSeries([]), time.perf_counter(),
                                     self.plan.catch_up_timeout)
        load_meter = CpuMeter(server.watched(self.fake))
        total_meter = CpuMeter(server.watched(self.fake))
        usage: list[CpuUsage] = []
        window: list[float] = []

        def mark(begin: bool) -> None:
            window.append(time.perf_counter())
            if begin:
                load_meter.start()
                total_meter.start()
            else:
                usage.append(load_meter.stop())

        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_until(server.url, stop, self.plan.lag_period,
                                                   series))
        try:
            result = await closed_loop(target.url, target.headers, target.body,
                                       self.plan.lag_concurrency, self.plan.lag_duration,
                                       warmup=0.0, window=mark)
        finally:
            stop.set()
            await sampler
        ended = window[-1]
        zero = await time_to_zero(server.url, series, ended, self.plan.catch_up_timeout)
        through = total_meter.stop() if zero is not None else None
        row = Row(name, store, self.plan.lag_concurrency, result, usage[0] if usage else None,
                  server.label)
        row.lag_events = series.events_behind(window[0], ended)
        row.lag_seconds = series.seconds_behind_max(window[0], ended)
        run = LagRun(row, series, window[0], ended, zero, settled, through)
        if settled is None:
            run.notes.append(f"the lag had not reached 0 after {self.plan.catch_up_timeout:.0f} "
                             "s before this load began, so earlier rows' events count too")
        after = f"{zero:.2f} s" if zero is not None else "never"
        print(f"  lag run [{store}] c{row.conc} {self.plan.lag_duration:g} s: {row.rps:,.0f} "
              f"req/s, largest lag {row.lag_events[0]} events ({row.lag_seconds:.2f} s), "
              f"0 after {after}", flush=True)
        return run
