"""The three providers over a real loopback socket, through the shared aiohttp-backed client,
against the fake upstream: replies, tool calls, native streaming, error classes, failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from adapters.providers import Provider, build_provider
from adapters.providers.errors import (
    ConnectionFailed,
    MidStreamFailure,
    ProviderError,
    RateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
)
from adapters.providers.http import HTTPSettings, build_http_client
from domain.protocols.canonical import MessageAccumulator
from domain.protocols.surfaces import WireRequest
from tests.fakes.upstream import (
    FakeUpstream,
    closed_port,
    http_error,
    start_fake_upstream,
    text,
    tool_call,
)

KINDS = ["anthropic", "openai", "gemini"]
REQUEST: dict[str, Any] = {
    "model": "ainfera-inference",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
}
WIRE = WireRequest.messages(REQUEST)
UNKNOWN = {"usage": {"input_tokens": None, "output_tokens": None, "cache_read": None,
                     "cache_write": None}}["usage"]  # fmt: skip


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(HTTPSettings(read_timeout=5.0)) as shared:
        yield shared


def make(kind: str, fake: FakeUpstream, client: httpx.AsyncClient) -> Provider:
    base_url = fake.openai_base_url if kind == "openai" else fake.base_url
    return build_provider(f"fake-{kind}", kind, base_url, "sk-fake", client)


async def call(provider: Provider, model: str, *, streaming: bool) -> object:
    if streaming:
        return await provider.open_stream(WIRE, model)
    return await provider.complete(WIRE, model)


async def drain(stream: AsyncIterator[dict[str, Any]], into: list[dict[str, Any]]) -> None:
    async for event in stream:
        into.append(event)


async def collect(provider: Provider, model: str) -> tuple[list[dict[str, Any]], Any]:
    async with await provider.open_stream(WIRE, model) as stream:
        return [event async for event in stream], stream


@pytest.mark.parametrize("kind", KINDS)
async def test_text_reply(kind: str, fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.script("m", text("Sunny and mild."))
    result = await make(kind, fake, client).complete(WIRE, "m")
    assert result.message["content"] == [{"type": "text", "text": "Sunny and mild."}]
    assert result.message["stop_reason"] == "end_turn"
    assert result.usage["input_tokens"] == 12
    assert result.usage["output_tokens"] == 7
    assert result.upstream_request_id


@pytest.mark.parametrize("kind", KINDS)
async def test_tool_call_reply_complete_and_streamed(
    kind: str, fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.script("m", tool_call("get_weather", {"city": "Paris", "unit": "C"}))
    provider = make(kind, fake, client)
    result = await provider.complete(WIRE, "m")
    [block] = result.message["content"]
    assert (block["type"], block["name"]) == ("tool_use", "get_weather")
    assert block["input"] == {"city": "Paris", "unit": "C"}
    assert result.message["stop_reason"] == "tool_use"

    events, stream = await collect(provider, "m")
    accumulator = MessageAccumulator()
    for event in events:
        accumulator.feed(event)
    assert accumulator.message is not None
    [streamed] = accumulator.message["content"]
    assert streamed["input"] == {"city": "Paris", "unit": "C"}
    assert stream.stop_reason == "tool_use"


@pytest.mark.parametrize("kind", KINDS)
async def test_events_arrive_while_the_upstream_is_still_streaming(
    kind: str, fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.script("slow", text("one two three four five six", chunk_delay=0.15))
    started = time.monotonic()
    async with await make(kind, fake, client).open_stream(WIRE, "slow") as stream:
        async for event in stream:
            if event["type"] == "content_block_delta":
                first_text_at = time.monotonic() - started
                # Parsed from the socket as it came: the upstream has not finished writing.
                assert fake.finished == 0
                break
        rest = [event async for event in stream]
    total = time.monotonic() - started
    # The fake counts a response finished after its last write returns, which can be a moment
    # after the client has parsed that write.
    for _ in range(200):
        if fake.finished:
            break
        await asyncio.sleep(0.01)
    assert fake.finished == 1
    assert rest[-1]["type"] == "message_stop"
    assert first_text_at < total - 0.5


ERROR_CASES = [
    (400, UpstreamRejected, False),
    (401, UpstreamRejected, False),
    (429, RateLimited, True),
    (500, UpstreamServerError, True),
    (503, UpstreamServerError, True),
    (529, UpstreamServerError, True),
]


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(("status", "cls", "retryable"), ERROR_CASES)
@pytest.mark.parametrize("kind", KINDS)
async def test_http_errors_are_classified(
    kind: str,
    status: int,
    cls: type[ProviderError],
    retryable: bool,
    streaming: bool,
    fake: FakeUpstream,
    client: httpx.AsyncClient,
) -> None:
    fake.script("m", http_error(status, error_message="scripted", headers={"retry-after": "2"}))
    provider = make(kind, fake, client)
    with pytest.raises(cls) as caught:
        await call(provider, "m", streaming=streaming)
    error = caught.value
    assert (error.status, error.retryable, error.message) == (status, retryable, "scripted")
    assert error.provider == f"fake-{kind}"
    assert error.retry_after == 2.0


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_refused_connection_is_retryable(
    kind: str, streaming: bool, client: httpx.AsyncClient
) -> None:
    provider = build_provider("down", kind, f"http://127.0.0.1:{closed_port()}", "k", client)
    with pytest.raises(ConnectionFailed) as caught:
        await call(provider, "m", streaming=streaming)
    assert (caught.value.error_type, caught.value.retryable) == ("connect_error", True)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_silent_upstream_times_out(kind: str, fake: FakeUpstream) -> None:
    fake.script("m", text(first_byte_delay=1.0))
    async with build_http_client(HTTPSettings(read_timeout=0.2)) as impatient:
        with pytest.raises(UpstreamTimeout) as caught:
            await make(kind, fake, impatient).open_stream(WIRE, "m")
    assert caught.value.retryable is True


@pytest.mark.parametrize("failure", ["drop", "error_event"])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_failure_mid_stream(
    kind: str, failure: str, fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    # The delay lets the caller take events before the failure; a failure that arrives before
    # the caller took anything raises from open_stream instead (the next test).
    fake.script("m", text("a b c d e f g h", fail_after=4, failure=failure, chunk_delay=0.05))
    stream = await make(kind, fake, client).open_stream(WIRE, "m")
    received: list[dict[str, Any]] = []
    with pytest.raises(MidStreamFailure) as caught:
        await drain(stream, received)
    assert received[0]["type"] == "message_start"
    assert caught.value.retryable is False
    if failure == "drop":
        assert caught.value.error_type == "network_error"
    else:
        assert caught.value.status is not None
        assert caught.value.status >= 500


@pytest.mark.parametrize("kind", KINDS)
async def test_an_in_band_error_before_any_content_can_still_fall_back(
    kind: str, fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.script("m", text(fail_after=0, failure="error_event"))
    with pytest.raises(UpstreamServerError) as caught:
        await make(kind, fake, client).open_stream(WIRE, "m")
    assert caught.value.retryable is True


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stream_without_usage_records_unknown_not_zero(
    kind: str, fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.script("m", text("no counts here", usage=False))
    events, stream = await collect(make(kind, fake, client), "m")
    assert events[-1]["type"] == "message_stop"
    assert stream.usage == UNKNOWN


async def test_unknown_fields_reach_an_anthropic_backend(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    request = {**REQUEST, "thinking": {"type": "enabled", "budget_tokens": 1024},
               "container": "ctr_1", "service_tier": "auto"}  # fmt: skip
    await make("anthropic", fake, client).complete(WireRequest.messages(request), "claude-backend")
    [sent] = fake.requests
    assert sent.body == {**request, "model": "claude-backend"}
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["x-api-key"] == "sk-fake"


async def test_an_openai_stream_asks_for_usage(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    events, stream = await collect(make("openai", fake, client), "gpt-backend")
    [sent] = fake.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body["stream_options"] == {"include_usage": True}
    assert stream.usage["input_tokens"] == 12
    assert events[-2]["usage"]["input_tokens"] == 12


async def test_the_shared_client_reuses_its_connection(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    provider = make("openai", fake, client)
    for _ in range(3):
        await provider.complete(WIRE, "m")
    assert len({request.peer for request in fake.requests}) == 1


async def test_the_fake_upstream_speaks_what_the_official_sdks_expect(
    fake: FakeUpstream,
) -> None:
    """The e2e suite points the real SDKs at this fake, so it must satisfy them too."""
    fake.script("m", tool_call(text="Checking."))
    hi = [{"role": "user", "content": "hi"}]
    claude = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="k", max_retries=0)
    async with claude, claude.messages.stream(model="m", max_tokens=10, messages=hi) as events:
        message = await events.get_final_message()
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.usage.output_tokens == 7

    gpt = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
    async with gpt:
        stream = await gpt.chat.completions.create(
            model="m", messages=hi, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.total_tokens == 19
    [first_call] = next(c.choices[0].delta.tool_calls or [] for c in chunks[:-1]
                        if c.choices[0].delta.tool_calls)  # fmt: skip
    assert first_call.function is not None
    assert first_call.function.name == "get_weather"
