"""How far `open_stream` reads ahead: to the first generated output while a fallback is still
possible, only to the first event when it is not (so the client's first byte is not held)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.providers import build_provider
from adapters.providers.errors import ConnectionFailed, MidStreamFailure
from adapters.providers.http import HTTPSettings, build_http_client
from domain.protocols.surfaces import WireRequest
from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text

REQUEST = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
WIRE = WireRequest.messages(REQUEST)


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        # message_start, content_block_start, ping: then the connection drops, before content.
        upstream.script("drops", text("never said", fail_after=3, chunk_delay=0.05))
        yield upstream


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(HTTPSettings(read_timeout=5.0)) as shared:
        yield shared


async def test_a_failure_before_content_can_still_fall_back(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    provider = build_provider("a", "anthropic", fake.base_url, "k", client)
    with pytest.raises(ConnectionFailed) as caught:
        await provider.open_stream(WIRE, "drops")
    assert caught.value.retryable


async def test_without_a_fallback_the_first_event_is_handed_over_at_once(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    provider = build_provider("a", "anthropic", fake.base_url, "k", client)
    stream = await provider.open_stream(WIRE, "drops", until_content=False)
    async with stream:
        first = await anext(stream)
        assert first["type"] == "message_start"
        with pytest.raises(MidStreamFailure):
            async for _ in stream:
                pass
