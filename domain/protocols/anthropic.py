"""Anthropic Messages upstream: the canonical form itself, so translation only sets the
upstream model, checks the stream's order and notes the usage the upstream reported.

Unknown request fields (`thinking`, `service_tier`, `cache_control`, ...) pass through
untouched: an Anthropic backend understands more than this gateway does.
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
    """The body to send an Anthropic backend: the canonical request with its model replaced."""
    body = dict(request)
    body["model"] = upstream_model
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


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

    def __init__(self) -> None:
        self.usage = unknown_usage()
        self._started = False
        self._stopped = False

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
        return [data]

    def finish(self) -> list[JSON]:
        if not self._stopped:
            raise IncompleteStream("upstream stream ended before message_stop")
        return []
