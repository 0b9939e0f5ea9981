"""The upstream SIMULATOR: a loopback stand-in speaking the three vendor protocols over a real
socket. It is not a model: replies are scripted (tests) or canned (`ainfera upstream-sim` and
`make demo`, see `upstream_sim.canned`). The gateway's e2e tests, the benchmarks and the demo
all use it, so what a newcomer tries is what the tests prove.

It runs an asyncio HTTP/1.1 server (ephemeral port unless one is given) in its own thread and
event loop, so sync tests, async tests and a gateway under test can all call it. Each model
name is scripted with a `Behaviour`: a text or tool-call reply, an HTTP error, delays before
the headers and between stream frames, a failure after N frames (dropped connection or
in-band error), a stream without usage. Every request is recorded as received (`requests`:
method, path, headers and the decoded body), so a test can hold what reached the upstream
against what its client sent, field by field. A request for a structured answer (OpenAI
`response_format`, Anthropic `output_config.format` or a forced tool, Gemini
`responseMimeType`) gets a JSON instance of its schema instead of the scripted or canned text
(`upstream_sim/structured.py`).

    with start_fake_upstream() as fake:
        fake.script("slow-model", text("one two three", chunk_delay=0.2))
        ... AnthropicProvider("a", fake.base_url, "key", client) ...
        ... OpenAICompatProvider("o", fake.openai_base_url, "key", client) ...
        assert fake.requests[-1].body["model"] == "slow-model"

Routes: POST /v1/messages and /v1/messages/count_tokens (Anthropic), POST
/v1/chat/completions (OpenAI), POST /v1beta/models/{model}:generateContent and
:streamGenerateContent?alt=sse (Gemini). A request without the vendor's auth header gets that
vendor's 401 (any key value is accepted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from upstream_sim import routes
from upstream_sim.scripts import Behaviour, http_error, text, tool_call
from upstream_sim.wire import Response

__all__ = [
    "Behaviour",
    "FakeUpstream",
    "RecordedRequest",
    "closed_port",
    "http_error",
    "start_fake_upstream",
    "start_simulator",
    "text",
    "tool_call",
]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any  # the decoded JSON body, or None
    peer: str  # the client's host:port, so tests can see connection reuse


def closed_port() -> int:
    """A loopback port with nothing listening, for connection-refused tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# What to do for a model nobody scripted, given the request body (None when it was not JSON).
DefaultBehaviour = Callable[[str, Any], Behaviour]


def _plain(model: str, request: Any) -> Behaviour:
    return Behaviour()


class FakeUpstream:
    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 default: DefaultBehaviour = _plain, keep_requests: bool = True) -> None:
        self.requests: list[RecordedRequest] = []
        self._default = default
        # A long-running simulator must not keep every request it ever saw.
        self._keep_requests = keep_requests
        self.finished = 0  # responses written to their last byte
        self._scripts: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, host, port), self._loop
        ).result(5)
        self.port: int = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        self.openai_base_url = f"{self.base_url}/v1"

    def script(self, model: str, behaviour: Behaviour) -> None:
        with self._lock:
            self._scripts[model] = behaviour

    def behaviour(self, model: str, request: Any = None) -> Behaviour:
        with self._lock:
            scripted = self._scripts.get(model)
        return scripted if scripted is not None else self._default(model, request)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FakeUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _shutdown(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # Shutting down: end quietly, or asyncio logs the callback task's cancellation.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._writers.discard(writer)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serves one request; returns whether the connection may carry another."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await _read_body(reader, headers)
        url = urlsplit(target)
        body = json.loads(raw) if raw else None
        host, port = writer.get_extra_info("peername")[:2]
        record = RecordedRequest(method, url.path, url.query, headers, body, f"{host}:{port}")
        if self._keep_requests:
            self.requests.append(record)
        response = routes.respond(url.path, url.query, headers, body,
                                  lambda model: self.behaviour(model, body))
        keep_alive = headers.get("connection", "").lower() != "close"
        return await self._send(writer, response) and keep_alive

    async def _send(self, writer: asyncio.StreamWriter, response: Response) -> bool:
        behaviour = response.behaviour
        if behaviour.first_byte_delay:
            await asyncio.sleep(behaviour.first_byte_delay)
        head = [f"HTTP/1.1 {response.status} {_phrase(response.status)}"]
        headers = {**response.headers, **behaviour.headers}
        if response.frames is None:
            headers["content-length"] = str(len(response.body))
        else:
            headers.update({"transfer-encoding": "chunked", "cache-control": "no-cache"})
        head += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if response.frames is None:
            writer.write(response.body)
            await writer.drain()
            self.finished += 1
            return True
        for number, frame in enumerate(response.frames):
            if number and behaviour.chunk_delay:
                await asyncio.sleep(behaviour.chunk_delay)
            if behaviour.fail_after is not None and number == behaviour.fail_after:
                if behaviour.failure == "drop":
                    writer.transport.abort()
                    return False
                frame = response.error_frame
                writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                break
            writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.finished += 1
        return True


@contextlib.contextmanager
def start_fake_upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    try:
        yield fake
    finally:
        fake.close()


@contextlib.contextmanager
def start_simulator(host: str = "127.0.0.1", port: int = 0,
                    default: DefaultBehaviour = _plain) -> Iterator[FakeUpstream]:
    """The simulator as `ainfera upstream-sim` runs it: a fixed address, canned replies, no
    memory of past requests."""
    sim = FakeUpstream(host, port, default, keep_requests=False)
    try:
        yield sim
    finally:
        sim.close()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16):
            body += await reader.readexactly(size + 2)
            body = body[:-2]
        await reader.readuntil(b"\r\n")
        return body
    length = int(headers.get("content-length", "0"))
    return await reader.readexactly(length) if length else b""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else "Error"
