"""Anthropic Messages backends (POST {base_url}/v1/messages, SDK base_url convention).

A Messages request is already this vendor's shape: only the model changes, and fields this
gateway does not know are forwarded as they came. A Chat Completions request is translated
(`domain.protocols.anthropic.chat_to_anthropic`). `count_tokens` asks the same backend what a
request would cost in input tokens: a read-only call, never an inference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from adapters.providers.base import HTTPProvider
from adapters.providers.errors import InvalidUpstreamResponse, map_httpx_errors
from adapters.providers.sse import ServerSentEvent
from adapters.providers.stream import StreamReader
from domain.protocols.anthropic import (
    AnthropicStreamReader,
    anthropic_answer,
    anthropic_message_usage,
    anthropic_upstream_request,
    chat_to_anthropic,
)
from domain.protocols.canonical import JSON, TranslationError, Usage
from domain.protocols.structured import json_mode
from domain.protocols.surfaces import CHAT, ROUTING_FIELDS, WireRequest

API_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class TokenCount:
    body: JSON  # Anthropic's answer as it came: {"input_tokens": N}
    upstream_request_id: str | None


class AnthropicProvider(HTTPProvider):
    kind = "anthropic"
    request_id_header = "request-id"
    # Beta features (new tools, longer outputs, ...) are switched on per request by this header.
    forwarded_headers = ("anthropic-beta",)

    def _url(self, upstream_model: str, *, stream: bool) -> str:
        return f"{self.base_url}/v1/messages"

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key, "anthropic-version": API_VERSION}

    def _body(self, request: WireRequest, upstream_model: str, *, stream: bool,
              max_tokens_field: str) -> JSON:
        if request.surface == CHAT:
            return chat_to_anthropic(request.body, upstream_model, stream=stream)
        return anthropic_upstream_request(request.body, upstream_model, stream=stream)

    def _read(self, body: JSON, upstream_model: str, request: WireRequest) -> tuple[JSON, Usage]:
        if body.get("type") != "message":
            raise TranslationError(f"expected a message object, got type {body.get('type')!r}")
        return anthropic_answer(body, json_tool=_json_tool(request)), anthropic_message_usage(body)

    def _reader(self, upstream_model: str, request: WireRequest) -> StreamReader:
        return _EventReader(json_tool=_json_tool(request))

    async def count_tokens(self, body: JSON, upstream_model: str, *,
                           client_headers: Mapping[str, str] | None = None) -> TokenCount:
        """POST /v1/messages/count_tokens with the client's body, this backend's model."""
        sent = {name: value for name, value in body.items() if name not in ROUTING_FIELDS}
        sent["model"] = upstream_model
        with map_httpx_errors(self.name):
            response = await self._upstream.post(
                f"{self.base_url}/v1/messages/count_tokens",
                self._request_headers(client_headers), orjson.dumps(sent), stream=False)
        if response.status_code >= 300:
            raise self._status_error(response)
        try:
            answer = orjson.loads(response.content)
            if not isinstance(answer, dict) or type(answer.get("input_tokens")) is not int:
                raise ValueError(f"no input_tokens count in {answer!r:.200}")
        except ValueError as exc:
            raise InvalidUpstreamResponse(self.name, response.status_code, "invalid_response",
                                          str(exc)) from exc
        return TokenCount(answer, self._request_id(response))


def _json_tool(request: WireRequest) -> bool:
    """A chat request for any JSON object is answered through a forced tool (see
    `domain.protocols.structured.JSON_TOOL`), which is read back as text."""
    return request.surface == CHAT and json_mode(request.body.get("response_format"))


class _EventReader:
    """Anthropic's SSE carries the event name on the `event:` line, which the SDK trusts."""

    def __init__(self, *, json_tool: bool = False) -> None:
        self._reader = AnthropicStreamReader(json_tool=json_tool)

    @property
    def usage(self) -> Usage:
        return self._reader.usage

    def on_event(self, sse: ServerSentEvent) -> list[JSON]:
        data = orjson.loads(sse.data) if sse.data.strip() else {}
        return self._reader.feed(sse.event, data)

    def on_end(self) -> list[JSON]:
        return self._reader.finish()
