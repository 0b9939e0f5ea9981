"""The three providers over httpx.MockTransport: what goes on the wire, how answers and
errors are read, and how streams are parsed and classified."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from adapters.providers import build_provider
from adapters.providers.base import HTTPProvider
from adapters.providers.errors import (
    ConnectionFailed,
    InvalidUpstreamResponse,
    MidStreamFailure,
    NotTranslatable,
    ProviderError,
    RateLimited,
    UpstreamRejected,
    UpstreamServerError,
)
from domain.protocols.surfaces import WireRequest

PORTABLE: dict[str, Any] = {
    "model": "client-model",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hi"}],
    "metadata": {"user_id": "u1"},
}
# An Anthropic backend gets every field, even one no other protocol can carry (its fate there
# is "refused", so such a request is only ever sent to Anthropic).
REQUEST: dict[str, Any] = {**PORTABLE, "container": "ctr_1"}
WIRE = WireRequest.messages(REQUEST)
PORTABLE_WIRE = WireRequest.messages(PORTABLE)
ANTHROPIC_MESSAGE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-b",
    "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 2},
}  # fmt: skip
OPENAI_COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-b",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}  # fmt: skip
GEMINI_RESPONSE = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "hello"}]},
                    "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
    "responseId": "resp_1",
}  # fmt: skip

Handler = Callable[[httpx.Request], httpx.Response]


def provider(kind: str, handler: Handler) -> HTTPProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    built = build_provider(f"{kind}-1", kind, "https://up.example/base/", "sk-test", client)
    assert isinstance(built, HTTPProvider)
    return built


async def test_anthropic_request_and_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANTHROPIC_MESSAGE, headers={"request-id": "req_a"})

    result = await provider("anthropic", handler).complete(WIRE, "claude-b")
    [sent] = seen
    assert str(sent.url) == "https://up.example/base/v1/messages"
    assert sent.headers["x-api-key"] == "sk-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert json.loads(sent.content) == {**REQUEST, "model": "claude-b"}
    assert result.message == ANTHROPIC_MESSAGE
    assert result.usage == {"input_tokens": 3, "output_tokens": 2, "cache_read": None,
                            "cache_write": None}  # fmt: skip
    assert result.upstream_request_id == "req_a"


async def test_openai_request_and_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=OPENAI_COMPLETION, headers={"x-request-id": "req_o"})

    result = await provider("openai", handler).complete(PORTABLE_WIRE, "gpt-b")
    [sent] = seen
    assert str(sent.url) == "https://up.example/base/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert json.loads(sent.content) == {
        "model": "gpt-b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50,
        "user": "u1",
    }  # fmt: skip
    assert result.message["content"] == [{"type": "text", "text": "hello"}]
    assert result.usage["input_tokens"] == 3
    assert result.upstream_request_id == "req_o"


async def test_gemini_request_and_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=GEMINI_RESPONSE)

    result = await provider("gemini", handler).complete(PORTABLE_WIRE, "gemini-b")
    [sent] = seen
    assert str(sent.url) == "https://up.example/base/v1beta/models/gemini-b:generateContent"
    assert sent.headers["x-goog-api-key"] == "sk-test"
    assert "key=" not in str(sent.url)
    assert json.loads(sent.content)["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert result.message["content"] == [{"type": "text", "text": "hello"}]
    assert result.upstream_request_id == "resp_1"  # Gemini has no request-id header


ERROR_BODIES = {
    "anthropic": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
    "openai": {"error": {"message": "slow down", "type": "rate_limit_error", "param": None,
                         "code": "rate_limit_exceeded"}},
    "gemini": {"error": {"code": 429, "message": "slow down", "status": "rate_limit_error"}},
}  # fmt: skip


@pytest.mark.parametrize("kind", ["anthropic", "openai", "gemini"])
async def test_each_vendor_error_body_is_read(kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json=ERROR_BODIES[kind], headers={"retry-after-ms": "1500"})

    with pytest.raises(RateLimited) as caught:
        await provider(kind, handler).complete(PORTABLE_WIRE, "m")
    error = caught.value
    assert (error.provider, error.status, error.error_type) == (
        f"{kind}-1",
        429,
        "rate_limit_error",
    )
    assert error.message == "slow down"
    assert error.retryable is True
    assert error.retry_after == 1.5


async def test_a_non_json_error_page_still_classifies_by_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>", headers={"retry-after": "3"})

    with pytest.raises(UpstreamServerError) as caught:
        await provider("openai", handler).complete(PORTABLE_WIRE, "m")
    assert caught.value.error_type == "http_502"
    assert "Bad Gateway" in caught.value.message
    assert caught.value.retry_after == 3.0


async def test_x_should_retry_false_makes_a_5xx_final() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = ERROR_BODIES["anthropic"]
        return httpx.Response(500, json=body, headers={"x-should-retry": "false"})

    with pytest.raises(UpstreamServerError) as caught:
        await provider("anthropic", handler).complete(WIRE, "m")
    assert caught.value.retryable is False


async def test_an_unreadable_success_body_is_invalid_upstream_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="not json")

    with pytest.raises(InvalidUpstreamResponse) as caught:
        await provider("anthropic", handler).complete(WIRE, "m")
    assert caught.value.retryable is False


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_redirect_is_an_error_not_a_body_to_read(streaming: bool) -> None:
    # Even a redirect whose body looks like an answer: a 3xx is never a response of the API.
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(308, json=ANTHROPIC_MESSAGE,
                              headers={"location": "https://elsewhere.example/v1/messages"})

    anthropic = provider("anthropic", handler)
    with pytest.raises(InvalidUpstreamResponse) as caught:
        await (anthropic.open_stream(WIRE, "m") if streaming else anthropic.complete(WIRE, "m"))
    assert len(sent) == 1
    assert (caught.value.status, caught.value.error_type) == (308, "redirect")
    assert caught.value.retryable is False
    assert "https://elsewhere.example/v1/messages" in caught.value.message


async def test_a_transport_failure_is_mapped_from_the_httpx_exception() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ConnectionFailed) as caught:
        await provider("gemini", handler).complete(PORTABLE_WIRE, "m")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.retryable is True


async def test_a_request_the_backend_protocol_cannot_carry_is_not_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    request = {**REQUEST, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    with pytest.raises(NotTranslatable) as caught:
        await provider("openai", handler).complete(WireRequest.messages(request), "m")
    assert caught.value.retryable is True  # a backend of another kind may take it


def sse_response(body: bytes, piece: int = 5, status: int = 200) -> Handler:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), piece):
            yield body[start : start + piece]

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream", "request-id": "req_s"}
        return httpx.Response(status, headers=headers, content=chunks())

    return handler


def anthropic_sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


START_MESSAGE = {**ANTHROPIC_MESSAGE, "content": [], "stop_reason": None,
                 "usage": {"input_tokens": 3, "output_tokens": 1}}  # fmt: skip
START = {"type": "message_start", "message": START_MESSAGE}
BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
DELTA = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hé"}}
STOP = {"type": "content_block_stop", "index": 0}
END = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
       "usage": {"output_tokens": 2}}  # fmt: skip
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


async def test_a_stream_is_parsed_across_arbitrary_chunk_boundaries() -> None:
    body = anthropic_sse(START, BLOCK, DELTA, STOP, END, {"type": "message_stop"})
    sent: list[httpx.Request] = []
    handler = sse_response(body, piece=3)

    def recording(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    stream = await provider("anthropic", recording).open_stream(WIRE, "claude-b")
    async with stream:
        events = [event async for event in stream]
    assert [e["type"] for e in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert events[2]["delta"]["text"] == "hé"
    assert stream.usage == {"input_tokens": 3, "output_tokens": 2, "cache_read": None,
                            "cache_write": None}  # fmt: skip
    assert (stream.upstream_request_id, stream.stop_reason) == ("req_s", "end_turn")
    assert stream.bytes_received == len(body)
    assert json.loads(sent[0].content)["stream"] is True
    assert sent[0].headers["accept"] == "text/event-stream"


async def test_an_error_event_before_any_content_raises_from_open_stream() -> None:
    # Anthropic often answers 200 and then `event: error` overloaded: still falls back.
    handler = sse_response(anthropic_sse(OVERLOADED))
    with pytest.raises(UpstreamServerError) as caught:
        await provider("anthropic", handler).open_stream(WIRE, "m")
    assert (caught.value.status, caught.value.error_type) == (529, "overloaded_error")
    assert caught.value.retryable is True


async def test_an_error_event_after_content_is_a_mid_stream_failure() -> None:
    handler = sse_response(anthropic_sse(START, BLOCK, DELTA, OVERLOADED))
    stream = await provider("anthropic", handler).open_stream(WIRE, "m")
    received: list[str] = []

    async def drain() -> None:
        async for event in stream:
            received.append(event["type"])

    with pytest.raises(MidStreamFailure) as caught:
        await drain()
    assert received == ["message_start", "content_block_start", "content_block_delta"]
    assert (caught.value.status, caught.value.error_type) == (529, "overloaded_error")
    assert caught.value.retryable is False


async def test_a_stream_that_ends_without_message_stop_fails() -> None:
    handler = sse_response(anthropic_sse(START, BLOCK, DELTA))
    stream = await provider("anthropic", handler).open_stream(WIRE, "m")
    with pytest.raises(MidStreamFailure) as caught:
        async for _ in stream:
            pass
    assert caught.value.error_type == "incomplete_stream"


@pytest.mark.parametrize(("status", "cls"), [(429, RateLimited), (400, UpstreamRejected)])
async def test_an_http_error_on_a_stream_raises_from_open_stream(
    status: int, cls: type[ProviderError]
) -> None:
    handler = sse_response(json.dumps(ERROR_BODIES["anthropic"]).encode(), status=status)
    with pytest.raises(cls) as caught:
        await provider("anthropic", handler).open_stream(WIRE, "m")
    assert caught.value.message == "slow down"


async def test_openai_and_gemini_streams_through_the_same_port() -> None:
    openai_body = (
        b'data: {"id":"c1","model":"g","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
        b'data: {"id":"c1","model":"g","choices":[{"index":0,"delta":{},'
        b'"finish_reason":"stop"}]}\n\n'
        b'data: {"id":"c1","model":"g","choices":[],"usage":{"prompt_tokens":4,'
        b'"completion_tokens":1,"total_tokens":5}}\n\ndata: [DONE]\n\n'
    )
    gemini_body = (
        b'data: {"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],'
        b'"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":1}}\r\n\r\n'
    )
    for kind, body in (("openai", openai_body), ("gemini", gemini_body)):
        events = [e async for e in
                  provider(kind, sse_response(body, 7)).stream(PORTABLE_WIRE, "m")]
        text = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"]
        assert text == ["hi"], kind
        assert events[-2]["usage"] == {"output_tokens": 1, "input_tokens": 4}, kind


def test_unknown_provider_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown provider kind"):
        build_provider("x", "cohere", "https://x", "k", httpx.AsyncClient())
