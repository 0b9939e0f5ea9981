"""The load benchmarks of one run, in an order that keeps every ratio inside it: the direct
ceiling, the stack floor, LiteLLM (with `--litellm`), the gateway on PostgreSQL + Redis (the
production store) and on SQLite (the embedded default), each with its long lag run and its
time-to-first-byte rows, then the floor again to show how much the machine drifted meanwhile.

Processes on loopback, each with its own GIL: this one (the load generator), the fake upstream
(bench/fake_server.py), and one server under test at a time, on the server core
(bench/pinning.py): `ainfera serve` (tests/harness/gateway.py; its projector is a child process
it supervises), the floor (bench/floor_server.py) or the LiteLLM proxy (bench/litellm_peer.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import report, servers
from bench.common import FakeServer, Section
from bench.litellm_peer import fetch_attempts, litellm, version
from bench.overhead import LoadBench
from bench.pinning import Pinning, allowed
from bench.plan import Plan
from bench.report import DIRECT, FLOOR, PG, PINNED, ROUTED, Results
from bench.servers import Running, Store
from bench.targets import (
    Target,
    direct_chat,
    direct_messages,
    gateway_chat,
    gateway_messages,
    messages_body,
    probe,
)
from bench.ttfb import TTFB_NOTE, TtfbBench


@dataclass
class LoadOutcome:
    sections: list[Section]
    affinity: dict[str, set[str]] = field(default_factory=dict)
    litellm_version: str = ""


def _floor_target(floor: Running) -> Target:
    # The floor forwards the body as it is, so it names the upstream's own model.
    return Target(FLOOR, f"{floor.url}/v1/messages", {"x-api-key": "floor"},
                  messages_body("up-claude", False))


def _litellm_target(peer: Running, model: str) -> Target:
    return Target("litellm", f"{peer.url}/v1/messages",
                  {"authorization": f"Bearer {peer.key}", "anthropic-version": "2023-06-01"},
                  messages_body(model, False))


def run_load_benchmarks(plan: Plan, tmp: Path, stores: list[Store], litellm_bin: Path | None,
                        pinning: Pinning, runner: asyncio.Runner) -> LoadOutcome:
    run = runner.run
    res = Results(low=min(plan.concurrency), high=max(plan.concurrency))
    outcome = LoadOutcome([])
    headline_notes: list[str] = []
    ttfb = TtfbBench(plan, run)
    ttfb_seconds = 0.0
    verified = Section("`ainfera verify` after each gateway's rows (every read model rebuilt "
                       "and diffed, the ledger, the Redis counters)",
                       ["store", "result", "seconds", "its last line"])
    began = time.perf_counter()

    def note_affinity(found: dict[str, str]) -> None:
        for name, cores in found.items():
            outcome.affinity.setdefault(name, set()).add(cores)

    with FakeServer() as fake:
        note_affinity({"load generator": allowed(os.getpid()), "fake upstream": allowed(fake.pid)})
        load = LoadBench(plan, run, fake)
        print("load: direct to the fake upstream (the generator + upstream ceiling)", flush=True)
        res.rows += load.measure(direct_messages(fake.base_url, False), DIRECT, "-", None)

        print("load: the floor", flush=True)
        with servers.floor(fake, tmp, pinning) as floor:
            note_affinity(floor.affinity)
            res.rows += load.measure(_floor_target(floor), FLOOR, "-", floor)

        if litellm_bin is not None:
            outcome.litellm_version = version(litellm_bin)
            res.litellm = report.litellm_name(outcome.litellm_version)
            print(f"load: {res.litellm}", flush=True)
            with litellm(litellm_bin, fake, tmp, pinning) as peer:
                note_affinity(peer.affinity)
                target = _litellm_target(peer, "fake-claude")
                status, body, _ = run(probe(target))
                if status != 200:
                    raise RuntimeError(f"LiteLLM probe failed: {status} {body}")
                res.rows += load.measure(target, res.litellm, "-", peer)
            fetches = fetch_attempts(tmp / "litellm" / "litellm.log")
            headline_notes.append(
                f"LiteLLM {outcome.litellm_version}: its own `litellm` CLI (uvicorn, "
                "--num_workers 1, its access log off as ours is), no database, master key auth, "
                "the fake upstream as an "
                "`anthropic/` deployment, called on its /v1/messages with the same body; "
                f"LITELLM_LOCAL_MODEL_COST_MAP=True and the other local-only switches set; "
                f"fetch attempts in its log: {fetches}.")

        t0 = time.perf_counter()
        fake.script_all(plan.first_byte_delay, plan.chunk_delay, 5)
        try:
            ttfb.measure("messages", direct_messages(fake.base_url, True), "-", True)
            ttfb.measure("chat", direct_chat(fake.base_url, True), "-", True)
        finally:
            fake.script_all(0.0, 0.0, 5)
        ttfb_seconds += time.perf_counter() - t0

        for index, store in enumerate(stores):
            work = tmp / store.kind
            work.mkdir()
            print(f"load: the gateway on {store.label}", flush=True)
            with servers.gateway(store, fake, work, pinning) as gw:
                note_affinity(gw.affinity)
                routed = gateway_messages(gw.url, gw.key, "ainfera-inference", False)
                status, body, headers = run(probe(routed))
                if status != 200:
                    raise RuntimeError(f"gateway probe failed: {status} {body}")
                if index == 0:
                    headline_notes.append(
                        f"routed (`ainfera-inference`) chose {body.get('model')} (router "
                        f"{headers.get('x-ainfera-router')}): the cheapest model above the "
                        "quality floor, an OpenAI-protocol upstream, so routed rows include "
                        "Anthropic->OpenAI->Anthropic translation.")
                pinned = gateway_messages(gw.url, gw.key, "fake-claude", False)
                res.rows += load.measure(pinned, PINNED, store.label, gw)
                res.rows += load.measure(routed, ROUTED, store.label, gw)
                res.lag_runs.append(load.lag_run(pinned, PINNED, store.label, gw))

                print(f"time to first byte: the gateway on {store.label}", flush=True)
                t0 = time.perf_counter()
                fake.script_all(plan.first_byte_delay, plan.chunk_delay, 5)
                try:
                    ttfb.measure("messages", gateway_messages(gw.url, gw.key, "fake-claude",
                                                              True), store.label, False)
                    ttfb.measure("chat", gateway_chat(gw.url, gw.key, "fake-gpt", True),
                                 store.label, False)
                    if index == 0:
                        ttfb.native_check(fake, gw)
                finally:
                    fake.script_all(0.0, 0.0, 5)
                ttfb_seconds += time.perf_counter() - t0

                print(f"ainfera verify: the gateway on {store.label}", flush=True)
                result = servers.verify(gw, pinning, plan.verify_wait)
                verified.seconds += result.seconds
                verified.add(store.label, "passed" if result.ok else "**failed**",
                             f"{result.seconds:.1f}", result.said)

        print("load: the floor again (drift over the run)", flush=True)
        with servers.floor(fake, tmp, pinning) as floor:
            res.floor_again = load.measure(_floor_target(floor), FLOOR, "-", floor)

    headline_notes += _drift(res)
    wall = time.perf_counter() - began - ttfb_seconds - verified.seconds
    outcome.sections = _sections(res, plan, headline_notes, wall)
    ttfb.section.seconds = ttfb_seconds
    ttfb.section.notes.insert(0, TTFB_NOTE)
    outcome.sections += [ttfb.section, verified]
    return outcome


def _drift(res: Results) -> list[str]:
    notes = []
    for again in res.floor_again:
        first = res.floor(again.conc)
        if first is not None and first.rps:
            notes.append(f"the floor measured again at the end, c{again.conc}: "
                         f"{again.rps:,.0f} req/s vs {first.rps:,.0f} at the start "
                         f"({again.rps / first.rps - 1:+.0%}); ratios use the first.")
    return notes


def _sections(res: Results, plan: Plan, notes: list[str], wall: float) -> list[Section]:
    quick = " (--quick: short runs, a smoke test; do not quote these figures)" \
        if plan.quick else ""
    lo, hi = res.low, res.high
    head = report.headline(
        res, f"Headline: non-streamed POST /v1/messages, closed loop, {plan.duration:g} s per "
             f"row after {plan.warmup:g} s warm-up{quick}")
    head.notes = [
        f"added p50 = the row's p50 minus the direct row's p50 at the same concurrency; "
        f"'added p50 vs floor's' divides it by the floor's (c{lo}); 'share of floor req/s' "
        f"divides req/s by the floor's at c{hi}. CPU ms/req is the server under test's user + "
        "system CPU (its projector child included) over the counted requests.",
        *notes,
    ]
    head.seconds = wall
    peer = " and LiteLLM" if res.litellm else ""
    thread_rows = [(r.name, r) for r in res.rows
                   if r.conc == hi and r.name not in (DIRECT, PINNED, ROUTED)]
    thread_rows += [(f"{run.row.name} (lag run)", run.row) for run in res.lag_runs]
    sections = [
        head,
        report.targets(res),
        report.details(res, f"Every load row{quick}"),
        report.cpu_by_process(res, "CPU per request by process (ms of user + system CPU per "
                                   "counted request)"),
        report.cpu_by_thread(res, f"CPU per request by thread (the floor{peer} at c{hi}; the "
                                  "gateway and its projector during the lag runs)",
                             thread_rows),
        report.lag(res, f"Projection lag during and after a {plan.lag_duration:g} s load at "
                        f"{plan.lag_concurrency} connections (gateway, pinned model, no warm-up)"),
    ]
    sections[-1].notes.insert(0, (
        f"sampled from /metrics every {plan.lag_period:g} s during the load and every 0.05 s "
        "after it; seconds of events = how long before the sample the store held the last "
        "event the slowest projection had applied (resolution: the sampling period). The "
        "projector's CPU is counted from the load's start until every lag reads 0 again, so "
        "it includes the catch-up; the gateway's over the load alone. Lag also appears per "
        f"row in 'Every load row' (sampled the same way), and {PG} is the target of record."))
    return sections
