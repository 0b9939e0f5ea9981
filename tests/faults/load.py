"""A bounded concurrent load against one gateway, recording what every caller was told.

A few workers (asyncio, on a thread of their own) post a mix of calls: both surfaces, streamed
and not, a pinned model and the router, from each key given. Every loop is bounded in count
and time, traffic goes to 127.0.0.1 only, and `stop()` ends it.

What the tier checks afterwards rests on these records: a call counts as acknowledged when the
caller got a 200 and, for a stream, its terminal frame (`message_stop` / `[DONE]`).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field

import httpx

# Each worker pauses this long between calls: enough load to have calls in flight at any
# moment, not so much that a 2-core machine shared with other test runs is saturated.
PAUSE_S = 0.02
MAX_CALLS = 4000
CALL_TIMEOUT_S = 60.0


@dataclass
class Call:
    surface: str
    stream: bool
    model: str
    key: str
    started: float
    ended: float = 0.0
    status: int | None = None
    inference_id: str | None = None
    error: str | None = None  # a transport failure (the connection broke)
    complete: bool = False  # a 200 with the whole answer, terminal frame included
    retry_advised: bool = False  # x-should-retry: true on a 5xx
    retry_after: str | None = None
    body: str = ""

    @property
    def acknowledged(self) -> bool:
        return self.status == 200 and self.complete


KINDS = [("messages", False, "fake-claude"), ("messages", True, "fake-claude"),
         ("chat", False, "fake-gpt"), ("chat", True, "ainfera-inference"),
         ("messages", False, "ainfera-inference"), ("chat", True, "fake-gpt")]


def request_for(surface: str, stream: bool, model: str) -> tuple[str, dict[str, object]]:
    messages = [{"role": "user", "content": "say something short"}]
    if surface == "messages":
        return "/v1/messages", {"model": model, "max_tokens": 16, "stream": stream,
                                "messages": messages}
    return "/v1/chat/completions", {"model": model, "max_tokens": 16, "stream": stream,
                                    "messages": messages}


@dataclass
class Load:
    url: str
    keys: list[str]
    workers: int = 6
    calls: list[Call] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()),
                                        name="fault-load", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = CALL_TIMEOUT_S + 10) -> list[Call]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), "the load did not stop"
        return self.calls

    def since(self, moment: float) -> list[Call]:
        return [c for c in list(self.calls) if c.started >= moment]

    async def _run(self) -> None:
        kinds = itertools.cycle(KINDS)
        keys = itertools.cycle(self.keys)
        budget = itertools.count()
        limits = httpx.Limits(max_connections=self.workers * 2)
        async with httpx.AsyncClient(base_url=self.url, timeout=CALL_TIMEOUT_S,
                                     limits=limits) as client:

            async def worker() -> None:
                while not self._stop.is_set() and next(budget) < MAX_CALLS:
                    surface, stream, model = next(kinds)
                    await self._one(client, surface, stream, model, next(keys))
                    await asyncio.sleep(PAUSE_S)

            await asyncio.gather(*(worker() for _ in range(self.workers)))

    async def _one(self, client: httpx.AsyncClient, surface: str, stream: bool, model: str,
                   key: str) -> None:
        call = Call(surface, stream, model, key, time.monotonic())
        self.calls.append(call)
        path, body = request_for(surface, stream, model)
        try:
            async with client.stream("POST", path, json=body,
                                     headers={"x-api-key": key}) as response:
                call.status = response.status_code
                call.inference_id = response.headers.get("x-ainfera-inference-id")
                call.retry_advised = response.headers.get("x-should-retry") == "true"
                call.retry_after = response.headers.get("retry-after")
                text = (await response.aread()).decode(errors="replace")
                call.body = text[-2000:]
                if response.status_code == 200:
                    call.complete = (not stream) or _terminal(surface, text)
        except httpx.HTTPError as exc:
            call.error = f"{type(exc).__name__}: {exc}"
        finally:
            call.ended = time.monotonic()


def _terminal(surface: str, text: str) -> bool:
    if surface == "messages":
        return "event: message_stop" in text and "event: error" not in text
    return text.rstrip().endswith("data: [DONE]") and '"error"' not in text
