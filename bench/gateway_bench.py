"""Benchmarks 1 and 2: the gateway's overhead on non-streamed calls and its added time to first
byte on streamed ones, against the same fake upstream called directly.

Three processes on loopback: this one (the load generator), `ainfera serve` (started by
tests/harness/gateway.py's run_gateway) and the fake upstream (bench/fake_server.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aiohttp

from adapters.database import Database
from adapters.migrations import migrate
from bench.common import CpuMeter, FakeServer, Section, children_matching, ms, percentile
from bench.loadgen import LoadResult, StreamTiming, closed_loop, streams
from tests.harness.gateway import AINFERA, Gateway, run_gateway, scratch_database

if TYPE_CHECKING:
    from tests.fakes.upstream import FakeUpstream

PROMPT = [{"role": "user", "content": "Say hello in five words."}]
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-fake", "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": "Bearer sk-oai-fake"}


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Plan:
    """How long each piece runs; the defaults keep the whole `make bench` near 4 minutes."""

    duration: float = 6.0
    warmup: float = 1.0
    concurrency: tuple[int, ...] = (1, 32)
    ttfb_n: int = 200
    ttfb_concurrent_n: int = 192
    ttfb_concurrency: int = 16
    first_byte_delay: float = 0.05
    chunk_delay: float = 0.001


def messages_body(model: str, stream: bool) -> bytes:
    return json.dumps({"model": model, "max_tokens": 64, "messages": PROMPT,
                       "stream": stream}).encode()


def chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": PROMPT,
                            "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


def direct_messages(fake: FakeServer, stream: bool) -> Target:
    return Target("direct up-claude", f"{fake.base_url}/v1/messages", ANTHROPIC_HEADERS,
                  messages_body("up-claude", stream))


def direct_chat(fake: FakeServer, stream: bool) -> Target:
    return Target("direct up-gpt", f"{fake.openai_base_url}/chat/completions", OPENAI_HEADERS,
                  chat_body("up-gpt", stream))


def gateway_messages(gw: Gateway, model: str, stream: bool) -> Target:
    return Target(f"gateway {model}", f"{gw.url}/v1/messages", {"x-api-key": gw.key},
                  messages_body(model, stream))


def gateway_chat(gw: Gateway, model: str, stream: bool) -> Target:
    return Target(f"gateway {model}", f"{gw.url}/v1/chat/completions",
                  {"authorization": f"Bearer {gw.key}"}, chat_body(model, stream))


class _RemoteFake:
    """What run_gateway reads of a FakeUpstream (its base_url), for one in another process."""

    def __init__(self, fake: FakeServer) -> None:
        self.base_url = fake.base_url


@contextmanager
def gateway(kind: str, fake: FakeServer, tmp: Path, postgres_url: str,
            split_projections: bool = False) -> Iterator[Gateway]:
    """A gateway on a fresh database. `split_projections`: the projections run in a separate
    `ainfera project` worker process (AINFERA_NO_INPROCESS_PROJECTIONS=1 on the gateway), the
    documented multi-process deployment, instead of in the gateway's own process. The worker
    starts first, on the migrated database, because the gateway rebuilds its spend counters
    from the read models at start."""
    fake_upstream = cast("FakeUpstream", _RemoteFake(fake))
    with scratch_database(kind, tmp, postgres_url) as url:
        if not split_projections:
            with run_gateway(url, fake_upstream, tmp) as gw:
                yield gw
            return
        migrate(Database.from_url(url))
        log = (tmp / "project.log").open("w")
        worker = subprocess.Popen(  # noqa: S603 - the project's own CLI
            [AINFERA, "project"], env={**os.environ, "AINFERA_DATABASE_URL": url},
            stdout=log, stderr=subprocess.STDOUT)
        try:
            with run_gateway(url, fake_upstream, tmp,
                             {"AINFERA_NO_INPROCESS_PROJECTIONS": "1"}) as gw:
                yield gw
        finally:
            worker.terminate()
            worker.wait(30)
            log.close()


def child_pid(command: str) -> int | None:
    pids = children_matching(command)
    if len(pids) > 1:
        raise RuntimeError(f"expected one `{command}` child, found {pids}")
    return pids[0] if pids else None


def gateway_pid() -> int:
    pid = child_pid("ainfera serve")
    if pid is None:
        raise RuntimeError("no `ainfera serve` child is running")
    return pid


async def probe(target: Target) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One request: its status, JSON body and headers (to see what the router chose)."""
    async with aiohttp.ClientSession() as session, session.post(
        target.url, data=target.body, headers={**target.headers,
                                               "content-type": "application/json"}
    ) as resp:
        body = await resp.json(content_type=None)
        return resp.status, body, dict(resp.headers)


async def projection_lag(gw: Gateway) -> int:
    """The largest projection lag the gateway reports on /metrics (events behind)."""
    async with aiohttp.ClientSession() as session, session.get(f"{gw.url}/metrics") as resp:
        text = await resp.text()
    lags = [float(v) for v in re.findall(r"^ainfera_projection_lag_events\{.*\} (\S+)$", text,
                                         flags=re.M)]
    return int(max(lags, default=0))


def _cpu(fake: FakeServer, gw: Gateway | None) -> CpuMeter:
    pids = {"loadgen": os.getpid(), "fake": fake.pid}
    if gw is not None:
        pids["gateway"] = gateway_pid()
        worker = child_pid("ainfera project")
        if worker is not None:
            pids["projector"] = worker
    return CpuMeter(pids)


class OverheadBench:
    """Benchmark 1: requests/s and latency, direct and through the gateway."""

    def __init__(self, plan: Plan, run: Callable[[Any], Any]) -> None:
        self.plan = plan
        self.run = run
        self.direct: dict[int, LoadResult] = {}
        self.best_gateway = 0.0
        self.direct_loadgen_cpu = 0.0
        self.section = Section(
            "1. Gateway overhead, non-streamed (POST /v1/messages, closed loop, "
            f"{plan.duration:g} s per row after {plan.warmup:g} s warm-up)",
            ["target", "db", "projections", "conc", "req/s", "p50 ms", "p99 ms", "errors",
             "gw/direct req/s", "added p50 ms", "CPU (share of one core)"],
        )

    def measure(self, target: Target, db: str, projections: str, fake: FakeServer,
                gw: Gateway | None, concurrency: tuple[int, ...] | None = None) -> None:
        for conc in concurrency or self.plan.concurrency:
            meter = _cpu(fake, gw)
            meter.start()
            result: LoadResult = self.run(closed_loop(
                target.url, target.headers, target.body, conc, self.plan.duration,
                self.plan.warmup))
            meter.stop()
            p50 = percentile(result.latencies, 50)
            if gw is None:
                self.direct[conc] = result
                self.direct_loadgen_cpu = max(self.direct_loadgen_cpu, meter.share["loadgen"])
                ratio = added = "baseline"
            else:
                base = self.direct[conc]
                ratio = f"{result.rps / base.rps:.3f}"
                added = ms(p50 - percentile(base.latencies, 50))
                self.best_gateway = max(self.best_gateway, result.rps)
            self.section.add(target.name, db, projections, conc, f"{result.rps:,.0f}", ms(p50),
                             ms(percentile(result.latencies, 99)), result.errors, ratio, added,
                             meter.describe())
            if result.errors:
                self.section.notes.append(f"{target.name} c{conc}: {result.errors} errors, "
                                          f"first: {result.first_error}")
            print(f"  {target.name} [{db}, projections {projections}] c{conc}: "
                  f"{result.rps:,.0f} req/s p50 {ms(p50)} ms ({meter.describe()})", flush=True)

    def conclude(self) -> None:
        ceiling = max((r.rps for r in self.direct.values()), default=0.0)
        if ceiling and self.best_gateway:
            self.section.notes.insert(0, (
                f"direct rows measure the load generator + fake upstream ceiling: "
                f"{ceiling:,.0f} req/s with the generator at "
                f"{self.direct_loadgen_cpu * 100:.0f}% of a core, "
                f"{ceiling / self.best_gateway:.0f}x the best gateway row, where the generator "
                "uses a small share of a core: it is not what limits the gateway figures."))


class TtfbBench:
    """Benchmark 2: client-side time to first byte, direct vs through the gateway."""

    def __init__(self, plan: Plan, run: Callable[[Any], Any]) -> None:
        self.plan = plan
        self.run = run
        self.direct: dict[tuple[str, str], list[StreamTiming]] = {}
        self.section = Section(
            f"2. Time to first byte, streamed (upstream first_byte_delay "
            f"{plan.first_byte_delay * 1000:.0f} ms, chunk_delay {plan.chunk_delay * 1000:.0f} ms"
            ", 5-word reply)",
            ["surface", "path", "db", "mode", "n", "TTFB p50 ms", "TTFB p99 ms",
             "added p50 ms", "added p99 ms", "1st word p50 ms", "added 1st word p50 ms",
             "last byte p50 ms", "errors"],
        )

    def measure(self, surface: str, target: Target, db: str, direct: bool,
                concurrent: bool = True) -> None:
        modes = [("sequential", self.plan.ttfb_n, 1)]
        if concurrent:
            modes.append((f"{self.plan.ttfb_concurrency} concurrent",
                          self.plan.ttfb_concurrent_n, self.plan.ttfb_concurrency))
        for mode, n, conc in modes:
            timings: list[StreamTiming] = self.run(streams(target.url, target.headers,
                                                           target.body, n, conc))
            firsts = [t.first_byte for t in timings]
            tokens = [t.first_token for t in timings]
            errors = sum(t.status != 200 for t in timings)
            if direct:
                self.direct[(surface, mode)] = timings
                add50 = add99 = add_word = "baseline"
            else:
                base = self.direct[(surface, mode)]
                base_firsts = [t.first_byte for t in base]
                add50 = ms(percentile(firsts, 50) - percentile(base_firsts, 50))
                add99 = ms(percentile(firsts, 99) - percentile(base_firsts, 99))
                add_word = ms(percentile(tokens, 50)
                               - percentile([t.first_token for t in base], 50))
            self.section.add(surface, target.name, db, mode, len(timings),
                             ms(percentile(firsts, 50)), ms(percentile(firsts, 99)), add50,
                             add99, ms(percentile(tokens, 50)), add_word,
                             ms(percentile([t.last_byte for t in timings], 50)), errors)
            print(f"  TTFB {surface} {target.name} [{db}] {mode}: p50 "
                  f"{ms(percentile(firsts, 50))} ms p99 {ms(percentile(firsts, 99))} ms",
                  flush=True)

    def native_check(self, fake: FakeServer, gw: Gateway) -> None:
        """A slow stream (20 words, frames 50 ms apart): through the gateway the client's first
        byte must arrive long before the upstream sends its last."""
        fake.script_all(self.plan.first_byte_delay, 0.05, 20)
        try:
            checks = [
                ("messages", direct_messages(fake, True),
                 gateway_messages(gw, "fake-claude", True)),
                ("chat", direct_chat(fake, True), gateway_chat(gw, "fake-gpt", True)),
            ]
            for surface, direct, through in checks:
                upstream: list[StreamTiming] = self.run(
                    streams(direct.url, direct.headers, direct.body, 3, 1))
                relayed: list[StreamTiming] = self.run(
                    streams(through.url, through.headers, through.body, 3, 1))

                def p50(timings: list[StreamTiming], what: str) -> float:
                    return percentile([getattr(t, what) for t in timings], 50)

                up_last, gw_first = p50(upstream, "last_byte"), p50(relayed, "first_byte")
                verdict = ("native: first byte long before the upstream's last"
                           if gw_first < up_last / 3 else "NOT native (buffered?)")
                self.section.notes.append(
                    f"native check ({surface}, {int(p50(upstream, 'frames'))} upstream frames "
                    f"50 ms apart, median of 3): direct first byte "
                    f"{ms(p50(upstream, 'first_byte'))} / first word "
                    f"{ms(p50(upstream, 'first_token'))} / last byte "
                    f"{ms(up_last)} ms; gateway first byte {ms(gw_first)} / first word "
                    f"{ms(p50(relayed, 'first_token'))} / last byte "
                    f"{ms(p50(relayed, 'last_byte'))} ms -> {verdict}")
        finally:
            fake.script_all(self.plan.first_byte_delay, self.plan.chunk_delay, 5)


def run_gateway_benchmarks(plan: Plan, tmp: Path, postgres_url: str | None,
                           runner: asyncio.Runner) -> list[Section]:
    run = runner.run
    overhead = OverheadBench(plan, run)
    ttfb = TtfbBench(plan, run)
    ttfb_seconds = 0.0
    began = time.perf_counter()
    with FakeServer() as fake:
        print("benchmark 1: direct baseline (load generator + fake upstream ceiling)", flush=True)
        overhead.measure(direct_messages(fake, False), "-", "-", fake, None)
        kinds = [("sqlite", "SQLite")]
        if postgres_url:
            kinds.append(("postgres", "PostgreSQL"))
        for kind, label in kinds:
            work = tmp / kind
            work.mkdir()
            with gateway(kind, fake, work, postgres_url or "") as gw:
                status, body, headers = run(probe(gateway_messages(gw, "ainfera-inference",
                                                                   False)))
                if status != 200:
                    raise RuntimeError(f"gateway probe failed: {status} {body}")
                overhead.measure(gateway_messages(gw, "fake-claude", False), label,
                                 "in-process", fake, gw)
                overhead.measure(gateway_messages(gw, "ainfera-inference", False), label,
                                 "in-process", fake, gw)
                if kind == "sqlite":
                    overhead.section.notes.append(
                        f"`ainfera-inference` (routed) chose {body.get('model')} (router "
                        f"{headers.get('x-ainfera-router')}): the cheapest model above the "
                        "quality floor, an OpenAI-protocol upstream, so routed rows include "
                        "Anthropic->OpenAI->Anthropic translation.")
                lag = run(projection_lag(gw))
                overhead.section.notes.append(
                    f"{label}, in-process projections: largest projection lag on /metrics "
                    f"right after the load: {lag} events")
                print(f"benchmark 2 [{label}]: time to first byte", flush=True)
                t0 = time.perf_counter()
                fake.script_all(plan.first_byte_delay, plan.chunk_delay, 5)
                try:
                    if kind == "sqlite":
                        ttfb.measure("messages", direct_messages(fake, True), "-", True)
                        ttfb.measure("chat", direct_chat(fake, True), "-", True)
                    concurrent = kind == "sqlite"
                    ttfb.measure("messages", gateway_messages(gw, "fake-claude", True), label,
                                 False, concurrent)
                    ttfb.measure("chat", gateway_chat(gw, "fake-gpt", True), label, False,
                                 concurrent)
                    if kind == "sqlite":
                        ttfb.native_check(fake, gw)
                finally:
                    fake.script_all(0.0, 0.0, 5)
                ttfb_seconds += time.perf_counter() - t0
        work = tmp / "sqlite-split"
        work.mkdir()
        with gateway("sqlite", fake, work, "", split_projections=True) as gw:
            overhead.measure(gateway_messages(gw, "fake-claude", False), "SQLite",
                             "own process", fake, gw)
            lag = run(projection_lag(gw))
            overhead.section.notes.append(
                f"SQLite, projections in an `ainfera project` process: largest projection lag "
                f"right after the load: {lag} events")
    overhead.conclude()
    overhead.section.seconds = time.perf_counter() - began - ttfb_seconds
    ttfb.section.seconds = ttfb_seconds
    ttfb.section.notes.insert(0, (
        "TTFB = client-side time from sending the request to the first body bytes; 1st word = "
        "to the bytes carrying the first generated word; added = gateway percentile minus "
        "direct percentile: everything the gateway puts between the upstream's first byte and "
        "ours (auth, routing, the write-ahead Routed commit, dispatch, priming, re-encoding)."))
    return [overhead.section, ttfb.section]
