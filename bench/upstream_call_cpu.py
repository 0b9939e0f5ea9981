"""CPU per upstream call of the providers: the base revision's adapters/providers (httpx's
AsyncClient.send over httpx-aiohttp's transport) against the working tree's (the Upstream seam
in adapters/providers/http.py), both in one process, blocks of each alternating, so that a
shared, loaded machine weighs on both alike: read the ratio inside one run.

Run: .venv/bin/python -m bench.upstream_call_cpu [--base REV] [--calls N] [--repeat K]

Each variant is an AnthropicProvider on a client from its own revision's build_http_client,
calling the loopback fake upstream (bench/fake_server.py, a process of its own, so its CPU is
not counted: time.process_time is this process's alone) for a 5-word answer, non-streamed
(`complete`) and streamed (`open_stream`, drained). CPU is the event loop's, translation
included; the part that differs is the HTTP path.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import uvloop

from bench.common import ROOT, module_at
from domain.protocols.surfaces import WireRequest

MODEL = "up-claude"
WIRE = WireRequest.messages({"model": "ainfera-inference", "max_tokens": 64,
                             "messages": [{"role": "user", "content": "Hello there"}]})
# Loaded from the base revision in this order, each importing the ones before it under its
# base_ name; every other module (errors, sse, domain) is shared, as it did not change.
_MODULES = ("http", "stream", "base", "anthropic")


def _load_base(rev: str, scratch: Path) -> tuple[ModuleType, ModuleType]:
    loaded: dict[str, ModuleType] = {}
    for name in _MODULES:
        # Each base module imports the base modules loaded before it, not the head's.
        loaded[name] = module_at(
            rev, f"adapters/providers/{name}.py", f"base_{name}", scratch,
            {f"adapters.providers.{other} ": f"base_{other} " for other in loaded})
    return loaded["anthropic"], loaded["http"]


async def _complete(provider: Any) -> None:
    await provider.complete(WIRE, MODEL)


async def _stream(provider: Any) -> None:
    async with await provider.open_stream(WIRE, MODEL) as events:
        async for _ in events:
            pass


async def _block(call: Callable[[Any], Awaitable[None]], provider: Any, concurrency: int,
                 calls: int) -> tuple[float, float, int]:
    per_task = max(1, calls // concurrency)

    async def worker() -> None:
        for _ in range(per_task):
            await call(provider)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu0, time.perf_counter() - wall0, per_task * concurrency


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="1d2404d", help="git revision to compare against")
    parser.add_argument("--calls", type=int, default=4000, help="calls per variant, per "
                        "concurrency and kind of call, in each repeat")
    parser.add_argument("--block", type=int, default=500, help="calls in one timed block")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    options = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_server"], cwd=ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        uvloop.run(_run(options, server.stdout.readline().split()[1]))
    finally:
        server.stdin.write("quit\n")
        server.stdin.flush()
        server.wait(timeout=10)


async def _run(options: argparse.Namespace, base_url: str) -> None:
    import adapters.providers.anthropic as head_anthropic
    import adapters.providers.http as head_http

    with tempfile.TemporaryDirectory() as scratch:
        base_anthropic, base_http = _load_base(options.base, Path(scratch))
        clients = {"base": base_http.build_http_client(), "head": head_http.build_http_client()}
        providers = {
            "base": base_anthropic.AnthropicProvider("b", base_url, "sk-ant-fake",
                                                     clients["base"]),
            "head": head_anthropic.AnthropicProvider("h", base_url, "sk-ant-fake",
                                                     clients["head"]),
        }
        kinds = {"complete": _complete, "stream": _stream}
        print(f"{options.calls} calls per variant and figure, blocks of {options.block}, "
              f"base {options.base} vs working tree, upstream {base_url}")
        print(f"{'round':>5} {'kind':>8} {'conc':>4} {'variant':>7} {'CPU us/call':>12} "
              f"{'calls/s':>9}")
        try:
            for rnd in range(1, options.repeat + 1):
                for kind, call in kinds.items():
                    for concurrency in options.concurrency:
                        for provider in providers.values():  # connections, caches
                            await _block(call, provider, concurrency, concurrency * 4)
                        sums = {name: [0.0, 0.0, 0] for name in providers}
                        for _ in range(max(1, options.calls // options.block)):
                            for name, provider in providers.items():
                                cpu, wall, done = await _block(call, provider, concurrency,
                                                               options.block)
                                sums[name][0] += cpu
                                sums[name][1] += wall
                                sums[name][2] += done
                        cpu_per = {name: s[0] / s[2] for name, s in sums.items()}
                        for name, (_, wall, done) in sums.items():
                            print(f"{rnd:>5} {kind:>8} {concurrency:>4} {name:>7} "
                                  f"{cpu_per[name] * 1e6:>12.1f} {done / wall:>9.0f}",
                                  flush=True)
                        rate = {name: s[2] / s[1] for name, s in sums.items()}
                        print(f"{'':>5} {kind:>8} {concurrency:>4} {'head/base':>7} "
                              f"{cpu_per['head'] / cpu_per['base']:>12.2f} "
                              f"{rate['head'] / rate['base']:>9.2f}", flush=True)
        finally:
            for client in clients.values():
                await client.aclose()


if __name__ == "__main__":
    main()
