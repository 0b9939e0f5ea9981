"""The Anthropic pass-through: unknown fields forwarded, stream order and usage checked."""

from __future__ import annotations

from typing import Any

import pytest

from domain.protocols.anthropic import (
    AnthropicStreamReader,
    anthropic_message_usage,
    anthropic_upstream_request,
)
from domain.protocols.canonical import (
    IncompleteStream,
    MessageAccumulator,
    TranslationError,
    UpstreamStreamError,
)


def test_the_upstream_request_is_the_canonical_one_with_the_backend_model() -> None:
    request = {"model": "ainfera-inference", "max_tokens": 5, "messages": [],
               "thinking": {"type": "enabled", "budget_tokens": 1024}, "service_tier": "auto",
               "stream": True}  # fmt: skip
    body = anthropic_upstream_request(request, "claude-backend", stream=False)
    expected = {key: value for key, value in request.items() if key != "stream"}
    assert body == {**expected, "model": "claude-backend"}
    assert anthropic_upstream_request(request, "c", stream=True)["stream"] is True
    assert request["model"] == "ainfera-inference"  # the caller's dict is not changed


def test_usage_without_cache_fields_leaves_them_unknown() -> None:
    usage = anthropic_message_usage({"usage": {"input_tokens": 3, "output_tokens": 4}})
    assert usage == {"input_tokens": 3, "output_tokens": 4, "cache_read": None, "cache_write": None}


# The SDK fixture missing_usage_response.txt: message_start has no usage, message_delta has all.
FIXTURE: list[tuple[str | None, dict[str, Any]]] = [
    ("ping", {"type": "ping"}),
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_test", "type": "message", "role": "assistant", "content": [],
        "model": "claude-test", "stop_reason": None, "stop_sequence": None}}),
    (None, {"type": "ignored-without-event-line"}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "hi"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta",
                       "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"input_tokens": 11, "output_tokens": 1,
                                 "cache_creation_input_tokens": 3, "cache_read_input_tokens": 5}}),
    ("message_stop", {"type": "message_stop"}),
]  # fmt: skip


def test_the_reader_passes_events_through_and_keeps_the_latest_usage() -> None:
    reader = AnthropicStreamReader()
    events = [e for name, data in FIXTURE for e in reader.feed(name, data)] + reader.finish()
    # A ping before message_start and a frame without an event: line are dropped.
    assert [e["type"] for e in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert reader.usage == {"input_tokens": 11, "output_tokens": 1, "cache_read": 5,
                            "cache_write": 3}  # fmt: skip
    accumulator = MessageAccumulator()
    for event in events:
        accumulator.feed(event)
    assert accumulator.message is not None
    assert accumulator.message["content"] == [{"type": "text", "text": "hi"}]
    assert accumulator.message["stop_reason"] == "end_turn"


def test_an_error_event_raises_with_the_status_of_its_type() -> None:
    reader = AnthropicStreamReader()
    reader.feed(*FIXTURE[1])
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamStreamError) as caught:
        reader.feed("error", error)
    assert (caught.value.error_type, caught.value.status) == ("overloaded_error", 529)


def test_a_stream_that_ends_before_message_stop_is_incomplete() -> None:
    reader = AnthropicStreamReader()
    for name, data in FIXTURE[:5]:
        reader.feed(name, data)
    with pytest.raises(IncompleteStream):
        reader.finish()


def test_content_before_message_start_is_a_protocol_violation() -> None:
    with pytest.raises(TranslationError):
        AnthropicStreamReader().feed(*FIXTURE[3])


def test_the_accumulator_parses_tool_input_fragments_when_the_block_stops() -> None:
    accumulator = MessageAccumulator()
    block = {"type": "tool_use", "id": "t", "name": "f", "input": {}}
    for event in [
        FIXTURE[1][1],
        {"type": "content_block_start", "index": 0, "content_block": block},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": '{"a": '}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": "[1]}"}},
        {"type": "content_block_stop", "index": 0},
    ]:  # fmt: skip
        accumulator.feed(event)
    assert accumulator.message is not None
    assert accumulator.message["content"][0]["input"] == {"a": [1]}
