"""The stream a provider hands the gateway: canonical events parsed as upstream bytes arrive.

`open_stream()` primes it: reads until the model's first generated event (a content delta, or
the message end) is ready. So an HTTP error, a refused connection, a timeout, or an error
event the upstream sends before any content, raises there, classified like any other error
and while fallback is still possible. Once the caller has taken an event, a failure is a
`MidStreamFailure`, raised after the events that arrived before it. After the last event,
`usage`, `stop_reason` and `upstream_request_id` hold what the upstream said. A stream whose
upstream speaks the caller's protocol also carries the upstream's own frames (`NATIVE_FRAME`
events), for the caller's encoder to pass on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Final, Protocol, Self

import httpx

from adapters.providers.errors import (
    InvalidUpstreamResponse,
    MidStreamFailure,
    ProviderError,
    UpstreamServerError,
    error_for_status,
    provider_error_from,
)
from adapters.providers.http import UpstreamResponse
from adapters.providers.sse import ServerSentEvent, SSEDecoder
from domain.protocols.canonical import JSON, IncompleteStream, UpstreamStreamError, Usage

log = logging.getLogger("ainfera.providers")

# Events the model generated, as opposed to the envelope a backend sends before its first token.
_GENERATED: Final = frozenset({"content_block_delta", "message_delta", "message_stop"})


class StreamReader(Protocol):
    """Turns one vendor's SSE events into canonical events and keeps the reported usage."""

    @property
    def usage(self) -> Usage: ...

    def on_event(self, sse: ServerSentEvent) -> list[JSON]: ...

    def on_end(self) -> list[JSON]: ...


class ProviderStream:
    def __init__(
        self,
        provider: str,
        response: UpstreamResponse,
        reader: StreamReader,
        request_id_header: str | None,
    ) -> None:
        self.provider = provider
        self.upstream_request_id = response.headers.get(request_id_header or "") or None
        self.stop_reason: str | None = None
        self.bytes_received = 0
        self.events_delivered = 0
        self._response = response
        self._reader = reader
        self._decoder = SSEDecoder()
        self._chunks = response.aiter_bytes()
        self._pending: deque[JSON] = deque()
        self._exhausted = False
        self._failure: tuple[ProviderError, BaseException] | None = None

    @property
    def usage(self) -> Usage:
        return self._reader.usage

    async def prime(self, *, until_content: bool = True) -> None:
        """Reads ahead until the model's first generated output (so a failure before it can
        still fall back) or, with `until_content=False` (nothing to fall back to), only until
        the first event, so the client's first byte is not held."""
        while not self._exhausted and not (
            any(e["type"] in _GENERATED for e in self._pending) if until_content
            else self._pending
        ):
            await self._pull()
        if self._failure is not None:
            self._pending.clear()
            self._raise_failure()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> JSON:
        while not self._pending:
            if self._failure is not None:
                self._raise_failure()
            if self._exhausted:
                raise StopAsyncIteration
            await self._pull()
        event = self._pending.popleft()
        self.events_delivered += 1
        if event.get("type") == "message_delta":
            self.stop_reason = event.get("delta", {}).get("stop_reason")
        return event

    async def aclose(self) -> None:
        self._exhausted = True
        if isinstance(self._chunks, AsyncGenerator):
            await self._chunks.aclose()
        await self._response.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _pull(self) -> None:
        """Reads one network chunk into pending events; a failure is kept, with the events
        that preceded it, and the response closed."""
        events: list[JSON] = []
        try:
            await self._read(events)
        except httpx.HTTPError as exc:
            self._failure = (provider_error_from(self.provider, exc), exc)
        except UpstreamStreamError as exc:
            status = exc.status or 502
            self._failure = (
                error_for_status(self.provider, status, exc.error_type, exc.message),
                exc,
            )
        except IncompleteStream as exc:
            self._failure = (
                UpstreamServerError(self.provider, None, "incomplete_stream", str(exc)),
                exc,
            )
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            log.warning("%s: unreadable stream event", self.provider, exc_info=True)
            self._failure = (
                InvalidUpstreamResponse(
                    self.provider, None, "invalid_stream",
                    "the upstream sent a stream event that is not valid for its API"),
                exc,
            )
        if self._failure is not None:
            await self.aclose()
        for event in events:
            if self.upstream_request_id is None and event.get("type") == "message_start":
                self.upstream_request_id = event["message"].get("id") or None
        self._pending.extend(events)

    async def _read(self, events: list[JSON]) -> None:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self._exhausted = True
            self._decode(self._decoder.flush(), events)
            events.extend(self._reader.on_end())
            return
        self.bytes_received += len(chunk)
        self._decode(self._decoder.feed(chunk), events)

    def _decode(self, frames: list[ServerSentEvent], events: list[JSON]) -> None:
        for sse in frames:
            events.extend(self._reader.on_event(sse))

    def _raise_failure(self) -> None:
        assert self._failure is not None
        error, cause = self._failure
        if self.events_delivered:
            error = MidStreamFailure(self.provider, error.status, error.error_type, error.message)
        raise error from cause
