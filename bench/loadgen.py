"""The load generator: aiohttp on uvloop, closed-loop workers over kept-alive connections.

aiohttp directly (not httpx over it) keeps the generator's own cost per request low; its
ceiling is measured against the fake upstream directly, which is the baseline anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp


@dataclass
class LoadResult:
    requests: int
    errors: int
    elapsed: float
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0


@dataclass
class StreamTiming:
    headers: float  # seconds from sending to the response headers
    first_byte: float  # ... to the first body bytes (the first SSE frame)
    first_token: float  # ... to the bytes carrying the first generated word (MARKER)
    last_byte: float  # ... to the end of the body
    status: int
    frames: int


# A bound on the requests of one closed loop besides its duration: far above what one row sends
# on a 2-core box (the direct ceiling is ~20k req/s), so it only stops a loop gone wrong.
MAX_REQUESTS = 2_000_000


def _session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency,
                                     keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=60)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


async def closed_loop(url: str, headers: Mapping[str, str], body: bytes, concurrency: int,
                      duration: float, warmup: float = 1.0,
                      window: Callable[[bool], None] | None = None) -> LoadResult:
    """`concurrency` workers each send the next request as soon as the last is answered, for
    `duration` seconds after a `warmup` whose requests are not counted. `window(True)` is
    called as the counted part begins and `window(False)` as it ends (when its last request
    is answered), so CPU and lag are measured over exactly the requests counted. Each phase
    also stops after MAX_REQUESTS."""
    async with _session(concurrency) as session:
        result = LoadResult(0, 0, 0.0)
        sent_headers = {**headers, "content-type": "application/json"}
        sent = [0]

        async def worker(until: float, record: bool) -> None:
            while (start := time.perf_counter()) < until and sent[0] < MAX_REQUESTS:
                sent[0] += 1
                try:
                    async with session.post(url, data=body, headers=sent_headers) as resp:
                        await resp.read()
                        ok = resp.status == 200
                        if not ok and not result.first_error:
                            result.first_error = f"{resp.status} {(await resp.text())[:200]}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    ok = False
                    if not result.first_error:
                        result.first_error = repr(exc)
                if not record:
                    continue
                result.latencies.append(time.perf_counter() - start)
                result.requests += 1
                if not ok:
                    result.errors += 1

        if warmup:
            end = time.perf_counter() + warmup
            await asyncio.gather(*(worker(end, False) for _ in range(concurrency)))
        if window is not None:
            window(True)
        sent[0] = 0
        began = time.perf_counter()
        await asyncio.gather(*(worker(began + duration, True) for _ in range(concurrency)))
        result.elapsed = time.perf_counter() - began
        if window is not None:
            window(False)
        return result


# bench/fake_server.py scripts replies as "word0 word1 ...": the first generated text.
MARKER = b"word0"


async def _one_stream(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str],
                      body: bytes) -> StreamTiming:
    start = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as resp:
        got_headers = time.perf_counter() - start
        first = token = 0.0
        frames = 0
        tail = b""
        async for chunk in resp.content.iter_any():
            if not first and chunk:
                first = time.perf_counter() - start
            if not token:
                if MARKER in tail + chunk:
                    token = time.perf_counter() - start
                tail = chunk[-len(MARKER):]
            frames += chunk.count(b"\n\n")
        last = time.perf_counter() - start
        return StreamTiming(got_headers, first or last, token or last, last, resp.status, frames)


async def streams(url: str, headers: Mapping[str, str], body: bytes, total: int,
                  concurrency: int) -> list[StreamTiming]:
    """`total` streamed requests, `concurrency` at a time; each one's client-side timings."""
    sent_headers = {**headers, "content-type": "application/json"}
    timings: list[StreamTiming] = []
    async with _session(concurrency) as session:
        await _one_stream(session, url, sent_headers, body)  # open and warm a connection
        remaining = iter(range(total))

        async def worker() -> None:
            for _ in remaining:
                timings.append(await _one_stream(session, url, sent_headers, body))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings
