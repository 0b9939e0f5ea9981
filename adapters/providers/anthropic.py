"""Anthropic Messages backends (POST {base_url}/v1/messages, SDK base_url convention).

The canonical request is already this vendor's shape: only the model changes, and fields this
gateway does not know are forwarded as they came.
"""

from __future__ import annotations

import orjson

from adapters.providers.base import HTTPProvider
from adapters.providers.sse import ServerSentEvent
from adapters.providers.stream import StreamReader
from domain.protocols.anthropic import (
    AnthropicStreamReader,
    anthropic_message_usage,
    anthropic_upstream_request,
)
from domain.protocols.canonical import JSON, TranslationError, Usage

API_VERSION = "2023-06-01"


class AnthropicProvider(HTTPProvider):
    kind = "anthropic"
    request_id_header = "request-id"
    # Beta features (new tools, longer outputs, ...) are switched on per request by this header.
    forwarded_headers = ("anthropic-beta",)

    def _url(self, upstream_model: str, *, stream: bool) -> str:
        return f"{self.base_url}/v1/messages"

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key, "anthropic-version": API_VERSION}

    def _body(self, request: JSON, upstream_model: str, *, stream: bool) -> JSON:
        return anthropic_upstream_request(request, upstream_model, stream=stream)

    def _read(self, body: JSON, upstream_model: str) -> tuple[JSON, Usage]:
        if body.get("type") != "message":
            raise TranslationError(f"expected a message object, got type {body.get('type')!r}")
        return body, anthropic_message_usage(body)

    def _reader(self, upstream_model: str) -> StreamReader:
        return _EventReader()


class _EventReader:
    """Anthropic's SSE carries the event name on the `event:` line, which the SDK trusts."""

    def __init__(self) -> None:
        self._reader = AnthropicStreamReader()

    @property
    def usage(self) -> Usage:
        return self._reader.usage

    def on_event(self, sse: ServerSentEvent) -> list[JSON]:
        data = orjson.loads(sse.data) if sse.data.strip() else {}
        return self._reader.feed(sse.event, data)

    def on_end(self) -> list[JSON]:
        return self._reader.finish()
