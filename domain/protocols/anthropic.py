"""Anthropic Messages upstream: the canonical form itself, so a Messages request only has its
model set; the stream's order is checked and the usage the upstream reported noted.

Unknown request fields (`thinking`, `service_tier`, `cache_control`, ...) pass through
untouched: an Anthropic backend understands more than this gateway does. A Chat Completions
request is translated (`chat_to_anthropic`): Anthropic requires `max_tokens`, so a caller that
sent no limit gets `DEFAULT_MAX_TOKENS` (plus the thinking budget when it asked for
reasoning), and a `json_object` answer is forced through a tool and read back as text.
"""

from __future__ import annotations

from typing import Final

from domain.protocols.canonical import (
    JSON,
    IncompleteStream,
    TranslationError,
    UpstreamStreamError,
    Usage,
    merge_anthropic_usage,
    unknown_usage,
)
from domain.protocols.openai_request import openai_to_canonical
from domain.protocols.structured import JsonToolStream, force_json_tool, json_tool_answer
from domain.protocols.surfaces import ROUTING_FIELDS

# What an Anthropic backend is sent as `max_tokens` (which it requires) for a Chat Completions
# call that set no limit; thinking, which counts inside it, comes on top.
DEFAULT_MAX_TOKENS: Final = 4096

# The HTTP status Anthropic gives each error type, used when one arrives inside a 200 stream.
ERROR_STATUS: Final = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def anthropic_upstream_request(request: JSON, upstream_model: str, *, stream: bool) -> JSON:
    """The body to send an Anthropic backend: the request as sent, with the backend's model and
    without the gateway's own routing fields."""
    body = {name: value for name, value in request.items() if name not in ROUTING_FIELDS}
    body["model"] = upstream_model
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


def anthropic_max_tokens(thinking_budget: int | None) -> int:
    """`max_tokens` for a call whose caller set no limit."""
    return DEFAULT_MAX_TOKENS + (thinking_budget or 0)


def chat_to_anthropic(body: JSON, upstream_model: str, *, stream: bool) -> JSON:
    """The body an Anthropic backend gets for a Chat Completions request."""
    chat = openai_to_canonical(body)
    request = chat.canonical
    if chat.json_mode:
        force_json_tool(request)
    if request.get("max_tokens") is None:
        thinking = request.get("thinking") or {}
        budget = thinking.get("budget_tokens") if thinking.get("type") == "enabled" else None
        request["max_tokens"] = anthropic_max_tokens(budget)
    return anthropic_upstream_request(request, upstream_model, stream=stream)


def anthropic_answer(message: JSON, *, json_tool: bool) -> JSON:
    """The canonical message of an Anthropic response; a forced JSON answer becomes text."""
    return json_tool_answer(message) if json_tool else message


def anthropic_message_usage(message: JSON) -> Usage:
    usage = unknown_usage()
    merge_anthropic_usage(usage, message.get("usage"))
    return usage


class AnthropicStreamReader:
    """Passes upstream events through as canonical events, in the order the SDKs demand.

    The SDK dispatches on the SSE `event:` name, so frames without one are dropped here as
    they would be there; an `error` event becomes `UpstreamStreamError`; a stream that ends
    before `message_stop` is incomplete, however cleanly the connection closed.
    """

    def __init__(self, *, json_tool: bool = False) -> None:
        self.usage = unknown_usage()
        self._started = False
        self._stopped = False
        self._json = JsonToolStream() if json_tool else None

    def feed(self, event_name: str | None, data: JSON) -> list[JSON]:
        if event_name is None:
            return []
        if event_name == "error":
            error = data.get("error") or {}
            error_type = str(error.get("type", "api_error"))
            raise UpstreamStreamError(
                error_type, str(error.get("message", "")), ERROR_STATUS.get(error_type)
            )
        if event_name == "message_start":
            self._started = True
            merge_anthropic_usage(self.usage, data.get("message", {}).get("usage"))
        elif not self._started:
            if event_name == "ping":
                return []  # the SDK's stream helper insists message_start comes first
            raise TranslationError(f"upstream stream began with {event_name}, not message_start")
        elif event_name == "message_delta":
            merge_anthropic_usage(self.usage, data.get("usage"))
        elif event_name == "message_stop":
            self._stopped = True
        return [self._json.rewrite(data) if self._json else data]

    def finish(self) -> list[JSON]:
        if not self._stopped:
            raise IncompleteStream("upstream stream ended before message_stop")
        return []
