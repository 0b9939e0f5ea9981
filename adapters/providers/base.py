"""The Provider port and the HTTP plumbing its three vendor adapters share.

A provider translates, nothing more: the client's request in (`WireRequest`: as sent, and in
canonical form), canonical message or events out, errors as `ProviderError`. A request in the
provider's own protocol is sent as the client wrote it; any other is translated, and a field
the translation would have to refuse (`domain.protocols.fates`) stops it before any byte goes
out. It never retries or falls back (the gateway decides that from `retryable`) and never owns
its HTTP client: the shared one is passed in.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

import httpx
import orjson

from adapters.providers.errors import (
    InvalidUpstreamResponse,
    NotTranslatable,
    ProviderError,
    UpstreamRejected,
    error_for_status,
    map_httpx_errors,
)
from adapters.providers.http import UpstreamResponse, upstream_for
from adapters.providers.sse import ServerSentEvent
from adapters.providers.stream import ProviderStream, StreamReader
from domain.protocols.canonical import JSON, TranslationError, UnsupportedRequest, Usage
from domain.protocols.fates import backend_name, refusals_for
from domain.protocols.surfaces import WireRequest

log = logging.getLogger("ainfera.providers")


@dataclass(frozen=True, slots=True)
class ProviderResult:
    message: JSON  # canonical (Anthropic) message, ids and model as the upstream gave them
    usage: Usage  # None where the upstream did not say
    upstream_request_id: str | None
    # The upstream's body as received, when it speaks the caller's protocol: the answer the
    # client gets, every field kept.
    native: JSON | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One upstream request, ready for `Upstream.post`."""

    url: str
    headers: dict[str, str]
    content: bytes


class Provider(Protocol):
    name: str
    kind: str

    async def complete(self, request: WireRequest, upstream_model: str, *,
                       max_tokens_field: str = "max_tokens",
                       client_headers: Mapping[str, str] | None = None) -> ProviderResult: ...

    async def open_stream(self, request: WireRequest, upstream_model: str, *,
                          until_content: bool = True, max_tokens_field: str = "max_tokens",
                          client_headers: Mapping[str, str] | None = None) -> ProviderStream: ...

    def stream(self, request: WireRequest, upstream_model: str) -> AsyncIterator[JSON]: ...


class HTTPProvider(ABC):
    """What every vendor adapter does alike; subclasses supply the vendor's wire details."""

    kind: str
    request_id_header: ClassVar[str | None] = None
    # Client request headers this vendor's API understands and gets passed on unchanged.
    forwarded_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, base_url: str, api_key: str, client: httpx.AsyncClient) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._client = client
        self._upstream = upstream_for(client)
        # httpx's default headers (accept, accept-encoding, connection, user-agent: what every
        # call has always sent) and this backend's own, merged once rather than per call.
        self._constant_headers: dict[str, str] | None = None
        self._urls: dict[tuple[str, bool], str] = {}

    # Vendor specifics.
    @abstractmethod
    def _url(self, upstream_model: str, *, stream: bool) -> str:
        """The endpoint for this model, streaming or not."""

    @abstractmethod
    def _headers(self) -> dict[str, str]:
        """Authentication and version headers."""

    @abstractmethod
    def _body(self, request: WireRequest, upstream_model: str, *, stream: bool,
              max_tokens_field: str) -> JSON:
        """The vendor request body (raises TranslationError for what it cannot carry)."""

    @abstractmethod
    def _read(self, body: JSON, upstream_model: str, request: WireRequest) -> tuple[JSON, Usage]:
        """The canonical message and reported usage of a vendor response body."""

    @abstractmethod
    def _reader(self, upstream_model: str, request: WireRequest) -> StreamReader:
        """A fresh reader for one streamed response."""

    # The port.
    async def complete(self, request: WireRequest, upstream_model: str, *,
                       max_tokens_field: str = "max_tokens",
                       client_headers: Mapping[str, str] | None = None) -> ProviderResult:
        outgoing = self._build(request, upstream_model, stream=False,
                               max_tokens_field=max_tokens_field, client_headers=client_headers)
        with map_httpx_errors(self.name):
            response = await self._upstream.post(outgoing.url, outgoing.headers,
                                                 outgoing.content, stream=False)
        if response.status_code >= 300:
            raise self._status_error(response)
        try:
            body = orjson.loads(response.content)
            message, usage = self._read(body, upstream_model, request)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s: unreadable response body", self.name, exc_info=True)
            raise InvalidUpstreamResponse(
                self.name, response.status_code, "invalid_response",
                "the upstream answered with a body that is not a valid response of its API",
            ) from exc
        request_id = self._request_id(response) or message.get("id") or None
        native = body if request.native_to(self.kind) else None
        return ProviderResult(message, usage, request_id, native)

    async def open_stream(self, request: WireRequest, upstream_model: str, *,
                          until_content: bool = True, max_tokens_field: str = "max_tokens",
                          client_headers: Mapping[str, str] | None = None) -> ProviderStream:
        outgoing = self._build(request, upstream_model, stream=True,
                               max_tokens_field=max_tokens_field, client_headers=client_headers)
        outgoing.headers["accept"] = "text/event-stream"
        # No decompressor between the socket and the SSE decoder to hold bytes back.
        outgoing.headers["accept-encoding"] = "identity"
        with map_httpx_errors(self.name):
            response = await self._upstream.post(outgoing.url, outgoing.headers,
                                                 outgoing.content, stream=True)
            if response.status_code >= 300:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                raise self._status_error(response)
        stream = ProviderStream(
            self.name, response, self._reader(upstream_model, request), self.request_id_header
        )
        await stream.prime(until_content=until_content)
        return stream

    async def stream(self, request: WireRequest, upstream_model: str) -> AsyncIterator[JSON]:
        async with await self.open_stream(request, upstream_model) as events:
            async for event in events:
                yield event

    def _build(self, request: WireRequest, upstream_model: str, *, stream: bool,
               max_tokens_field: str = "max_tokens",
               client_headers: Mapping[str, str] | None = None) -> Outgoing:
        refused = refusals_for(request.surface, request.body, self.kind)
        if refused:
            # The router never picks a backend that would refuse; this is the last line for a
            # caller that did not ask it (a pinned model is checked before routing, too).
            raise NotTranslatable(self.name, None, "not_translatable",
                                  f"{backend_name(self.kind)} cannot take: "
                                  + "; ".join(str(r) for r in refused),
                                  param=refused[0].field)
        try:
            body = self._body(request, upstream_model, stream=stream,
                              max_tokens_field=max_tokens_field)
        except UnsupportedRequest as exc:
            raise NotTranslatable(self.name, None, "not_translatable", str(exc),
                                  param=exc.field) from exc
        except TranslationError as exc:
            raise NotTranslatable(self.name, None, "not_translatable", str(exc)) from exc
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            # A request the edge's checks let through but this vendor's translation cannot
            # read: the request is at fault, and no other backend would do better with it.
            log.warning("%s: request passed validation but not translation", self.name,
                        exc_info=True)
            raise UpstreamRejected(self.name, 400, "invalid_request_error",
                                   f"the request has a field whose shape the {self.kind} "
                                   "backend cannot take", False) from exc
        headers = self._request_headers(client_headers)
        return Outgoing(self._cached_url(upstream_model, stream), headers, orjson.dumps(body))

    def _request_headers(self, client_headers: Mapping[str, str] | None) -> dict[str, str]:
        constant = self._constant_headers
        if constant is None:
            constant = self._constant_headers = {
                **self._client.headers, "content-type": "application/json", **self._headers()}
        headers = constant.copy()
        if client_headers:
            for name in self.forwarded_headers:
                value = client_headers.get(name)
                if value:
                    headers[name] = value
        return headers

    def _cached_url(self, upstream_model: str, stream: bool) -> str:
        """A provider only ever calls a handful of URLs: make each once."""
        key = (upstream_model, stream)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) > 1024:
                self._urls.clear()
            url = self._urls[key] = self._url(upstream_model, stream=stream)
        return url

    def _request_id(self, response: UpstreamResponse) -> str | None:
        return response.headers.get(self.request_id_header) if self.request_id_header else None

    def _status_error(self, response: UpstreamResponse) -> ProviderError:
        """Reads the vendor's error body; all three nest it under `error` (Anthropic and OpenAI
        name its kind `type`, Gemini `status`). A redirect is never followed: a vendor API that
        answers with one is misconfigured, or not the vendor's API, and must not get the
        request re-sent somewhere nobody configured."""
        status = response.status_code
        if status < 400:
            location = response.headers.get("location") or "nowhere"
            return InvalidUpstreamResponse(
                self.name, status, "redirect",
                f"the upstream answered with a redirect (to {location[:200]}), which the "
                "gateway does not follow")
        try:
            error = orjson.loads(response.content).get("error")
        except (ValueError, AttributeError):
            error = None
        if not isinstance(error, dict):
            error = {"message": response.text[:500]}
        error_type = str(error.get("type") or error.get("status") or f"http_{status}")
        should_retry = {"true": True, "false": False}.get(
            response.headers.get("x-should-retry", "")
        )
        return error_for_status(
            self.name,
            status,
            error_type,
            str(error.get("message") or ""),
            should_retry=should_retry,
            retry_after=_retry_after(response.headers),
        )


class FrameTranslator(Protocol):
    """A domain stream translator for one vendor (ChunksToCanonical, GeminiStreamToCanonical)."""

    @property
    def usage(self) -> Usage: ...

    def feed(self, frame: JSON) -> list[JSON]: ...

    def finish(self) -> list[JSON]: ...


class DataFrameReader:
    """A StreamReader for data-only SSE (OpenAI, Gemini): each frame is one JSON object for
    the translator; `done` is OpenAI's `[DONE]` sentinel."""

    def __init__(self, translator: FrameTranslator, done: str | None = None) -> None:
        self._translator = translator
        self._done = done

    @property
    def usage(self) -> Usage:
        return self._translator.usage

    def on_event(self, sse: ServerSentEvent) -> list[JSON]:
        data = sse.data.strip()
        if self._done is not None and data == self._done:
            return self._translator.finish()
        return self._translator.feed(orjson.loads(data)) if data else []

    def on_end(self) -> list[JSON]:
        return self._translator.finish()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from `retry-after-ms` or `retry-after` (HTTP dates are ignored)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, ValueError):
            continue
    return None
