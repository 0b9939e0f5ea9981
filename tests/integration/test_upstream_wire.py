"""What the shared upstream client puts on the wire and how it reads it, through the path
production uses (build_http_client's aiohttp session): the exact headers an upstream sees, a
redirect answered but never followed, and the read timeout applying per read, not per call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from adapters.providers import Provider, build_provider
from adapters.providers.errors import InvalidUpstreamResponse, MidStreamFailure
from adapters.providers.http import HTTPSettings, build_http_client
from domain.protocols.surfaces import WireRequest
from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text

KINDS = ["anthropic", "openai", "gemini"]
WIRE = WireRequest.messages({"model": "ainfera-inference", "max_tokens": 64,
                             "messages": [{"role": "user", "content": "Hi"}]})
VENDOR_HEADERS = {
    "anthropic": {"x-api-key": "sk-fake", "anthropic-version": "2023-06-01"},
    "openai": {"authorization": "Bearer sk-fake"},
    "gemini": {"x-goog-api-key": "sk-fake"},
}
FORWARDED = {"anthropic": {"anthropic-beta": "tools-2099"}, "openai": {}, "gemini": {}}


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(HTTPSettings(read_timeout=5.0)) as shared:
        yield shared


def make(kind: str, base_url: str, client: httpx.AsyncClient) -> Provider:
    return build_provider(f"wire-{kind}", kind, base_url, "sk-fake", client)


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("kind", KINDS)
async def test_the_upstream_sees_exactly_the_intended_headers(
    kind: str, streaming: bool, fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    # httpx's defaults (accept, accept-encoding, connection, user-agent) are what every call
    # has always sent, as the vendors' own SDKs send theirs; a stream asks for SSE, undecoded.
    fake.script("m", text("Fine."))
    base_url = fake.openai_base_url if kind == "openai" else fake.base_url
    provider = make(kind, base_url, client)
    # A client header this vendor does not take, and a hop-by-hop one, must never pass.
    client_headers = {**FORWARDED[kind], "x-client-secret": "no", "cookie": "a=b"}
    if streaming:
        async with await provider.open_stream(WIRE, "m", client_headers=client_headers) as s:
            [_ async for _ in s]
    else:
        await provider.complete(WIRE, "m", client_headers=client_headers)
    [seen] = fake.requests
    headers = dict(seen.headers)
    assert int(headers.pop("content-length")) > 0
    assert headers == {
        "host": base_url.split("//")[1].split("/")[0],
        "accept": "text/event-stream" if streaming else "*/*",
        "accept-encoding": "identity" if streaming else "gzip, deflate",
        "connection": "keep-alive",
        "user-agent": f"python-httpx/{httpx.__version__}",
        "content-type": "application/json",
        **VENDOR_HEADERS[kind],
        **FORWARDED[kind],
    }


class _Redirecting:
    """Answers every vendor path with a redirect, and counts requests to where it points."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.followed = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/elsewhere"):
            self.followed += 1
            return web.json_response({"type": "message"})
        return web.Response(status=self.status, headers={"location": "/elsewhere/v1/messages"})


async def _serve(handler: Callable[[web.Request], Any]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_is_never_followed_and_says_so(
    kind: str, streaming: bool, status: int, client: httpx.AsyncClient
) -> None:
    upstream = _Redirecting(status)
    runner, base_url = await _serve(upstream.handle)
    try:
        provider = make(kind, base_url + ("/v1" if kind == "openai" else ""), client)
        with pytest.raises(InvalidUpstreamResponse) as caught:
            await (provider.open_stream(WIRE, "m") if streaming else provider.complete(WIRE, "m"))
    finally:
        await runner.cleanup()
    assert upstream.followed == 0
    error = caught.value
    assert (error.status, error.error_type, error.retryable) == (status, "redirect", False)
    assert "/elsewhere/v1/messages" in error.message


def _anthropic_frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


_START = {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}}
_BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
_DELTA = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}}
_TAIL = [{"type": "content_block_stop", "index": 0},
         {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
          "usage": {"output_tokens": 9}},
         {"type": "message_stop"}]


def _streaming(deltas: int, gap: float,
               stall: asyncio.Event | None) -> Callable[[web.Request], Any]:
    """An Anthropic stream: `deltas` text deltas `gap` seconds apart, then (with `stall`)
    silence until the test sets it."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in (_START, _BLOCK):
            await response.write(_anthropic_frame(event))
        for _ in range(deltas):
            await response.write(_anthropic_frame(_DELTA))
            await asyncio.sleep(gap)
        if stall is not None:
            await stall.wait()
        for event in _TAIL:
            await response.write(_anthropic_frame(event))
        await response.write_eof()
        return response

    return handle


async def test_a_stream_that_keeps_sending_outlives_the_read_timeout() -> None:
    # Ten gaps of a fifth of the timeout: the whole stream lasts twice the read timeout.
    runner, base_url = await _serve(_streaming(deltas=10, gap=0.2, stall=None))
    try:
        async with build_http_client(HTTPSettings(read_timeout=1.0)) as client:
            stream = await make("anthropic", base_url, client).open_stream(WIRE, "m")
            async with stream:
                events = [event async for event in stream]
    finally:
        await runner.cleanup()
    assert events[-1]["type"] == "message_stop"
    assert sum(e["type"] == "content_block_delta" for e in events) == 10


async def _drain(stream: Any, into: list[dict[str, Any]]) -> None:
    async with stream:
        async for event in stream:
            into.append(event)


async def test_a_stream_that_falls_silent_mid_way_times_out() -> None:
    resume = asyncio.Event()
    runner, base_url = await _serve(_streaming(deltas=2, gap=0.0, stall=resume))
    try:
        async with build_http_client(HTTPSettings(read_timeout=1.0)) as client:
            stream = await make("anthropic", base_url, client).open_stream(WIRE, "m")
            received: list[dict[str, Any]] = []
            with pytest.raises(MidStreamFailure) as caught:
                await _drain(stream, received)
    finally:
        resume.set()
        await runner.cleanup()
    assert [e["type"] for e in received][:2] == ["message_start", "content_block_start"]
    assert (caught.value.error_type, caught.value.retryable) == ("timeout", False)
