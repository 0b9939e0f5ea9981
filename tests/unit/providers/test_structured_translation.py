"""Structured output and reasoning across the three vendors' vocabularies
(domain/protocols/structured.py and the translators that use it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.protocols.anthropic import DEFAULT_MAX_TOKENS, AnthropicStreamReader, chat_to_anthropic
from domain.protocols.canonical import MessageAccumulator, UnsupportedRequest
from domain.protocols.gemini import canonical_to_gemini, chat_to_gemini
from domain.protocols.limits import output_ceiling
from domain.protocols.openai_request import canonical_to_openai, openai_to_canonical
from domain.protocols.structured import (
    EFFORT_BUDGET,
    JSON_TOOL,
    anthropic_thinking,
    budget_for_effort,
    effort_for_budget,
    json_tool_answer,
    output_format_from_response_format,
    reasoning_effort_problem,
    response_format_from_output_format,
    strict_compatible,
)
from domain.protocols.surfaces import CHAT, MESSAGES

STRICT = {"type": "object", "title": "Weather report",
          "properties": {"city": {"type": "string"},
                         "days": {"type": "array", "items": {
                             "type": "object", "properties": {"t": {"type": "number"}},
                             "required": ["t"], "additionalProperties": False}}},
          "required": ["city", "days"], "additionalProperties": False}  # fmt: skip
CHAT_BASE: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES_BASE: dict[str, Any] = {"model": "m", "max_tokens": 500,
                                 "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("effort", list(EFFORT_BUDGET))
def test_effort_to_budget_and_back_is_the_identity(effort: str) -> None:
    assert effort_for_budget(budget_for_effort(effort)) == effort


def test_a_budget_maps_to_the_highest_level_it_reaches() -> None:
    assert effort_for_budget(0) == "minimal"
    assert effort_for_budget(5000) == "low"
    assert effort_for_budget(10**6) == "max"
    with pytest.raises(UnsupportedRequest) as caught:
        budget_for_effort("extreme")
    assert caught.value.field == "reasoning_effort"


def test_openai_reasoning_becomes_anthropic_thinking_inside_the_limit() -> None:
    assert anthropic_thinking("none", None) == {"type": "disabled"}
    assert anthropic_thinking("high", None) == {"type": "enabled", "budget_tokens": 16384}
    # OpenAI counts reasoning inside max_completion_tokens, Anthropic inside max_tokens.
    assert anthropic_thinking("high", 4000) == {"type": "enabled", "budget_tokens": 3999}
    assert reasoning_effort_problem("low", 1024) is not None  # no room for the 1024 minimum
    assert reasoning_effort_problem("low", 1025) is None
    assert reasoning_effort_problem("none", 10) is None


def test_a_json_schema_response_format_becomes_anthropic_output_format() -> None:
    response_format = {"type": "json_schema", "json_schema": {
        "name": "weather", "description": "A weather report", "schema": STRICT, "strict": True}}
    assert output_format_from_response_format(response_format) == {
        "type": "json_schema", "schema": {**STRICT, "description": "A weather report"}}
    assert output_format_from_response_format({"type": "text"}) is None
    assert output_format_from_response_format({"type": "json_object"}) is None


def test_an_anthropic_output_format_becomes_a_response_format_strict_when_it_can_be() -> None:
    strict = response_format_from_output_format({"type": "json_schema", "schema": STRICT})
    assert strict == {"type": "json_schema", "json_schema": {
        "name": "Weather_report", "schema": STRICT, "strict": True}}
    # An optional property is fine for Anthropic, not for OpenAI's strict mode.
    loose_schema = {"type": "object", "properties": {"a": {"type": "string"}},
                    "additionalProperties": False}
    loose = response_format_from_output_format({"type": "json_schema", "schema": loose_schema})
    assert loose["json_schema"] == {"name": "response", "schema": loose_schema, "strict": False}


@pytest.mark.parametrize(("schema", "strict"), [
    (STRICT, True),
    ({"type": "object", "properties": {}}, False),  # open object
    ({"type": "object", "properties": {"a": {"type": "object", "properties": {}}},
      "required": ["a"], "additionalProperties": False}, False),  # nested open object
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, True),
    ({"type": "object", "properties": {"x": {"$ref": "#/$defs/X"}}, "required": ["x"],
      "additionalProperties": False,
      "$defs": {"X": {"type": "object", "properties": {"y": {"type": "integer"}},
                      "additionalProperties": False, "required": ["y"]}}}, True),
])  # fmt: skip
def test_strict_compatibility(schema: dict[str, Any], strict: bool) -> None:
    assert strict_compatible(schema) is strict


def test_chat_structured_output_reaches_anthropic_as_output_config() -> None:
    body = {**CHAT_BASE, "response_format": {"type": "json_schema", "json_schema": {
        "name": "w", "schema": STRICT, "strict": True}}}
    sent = chat_to_anthropic(body, "claude-b", stream=False)
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": STRICT}}
    assert sent["max_tokens"] == DEFAULT_MAX_TOKENS  # Anthropic requires one; none was sent
    assert "tools" not in sent


def test_chat_json_mode_reaches_anthropic_as_a_forced_tool_and_comes_back_as_text() -> None:
    body = {**CHAT_BASE, "response_format": {"type": "json_object"}}
    sent = chat_to_anthropic(body, "claude-b", stream=False)
    assert sent["tools"][0]["name"] == JSON_TOOL
    assert sent["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    answer = {"type": "message", "role": "assistant", "stop_reason": "tool_use", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": JSON_TOOL, "input": {"ok": True}}]}
    assert json_tool_answer(answer)["content"] == [{"type": "text", "text": '{"ok":true}'}]
    assert json_tool_answer(answer)["stop_reason"] == "end_turn"
    plain = {"content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn"}
    assert json_tool_answer(plain) is plain


def test_a_forced_json_stream_is_rewritten_to_text_events() -> None:
    reader = AnthropicStreamReader(json_tool=True)
    events = [
        ("message_start", {"type": "message_start", "message": {
            "id": "m", "type": "message", "role": "assistant", "model": "c", "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"a"'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": ": 1}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                           "usage": {"output_tokens": 4}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    message = MessageAccumulator()
    for name, data in events:
        for event in reader.feed(name, data):
            message.feed(event)
    assert message.message is not None
    assert message.message["content"] == [{"type": "text", "text": '{"a": 1}'}]
    assert message.message["stop_reason"] == "end_turn"


def test_chat_reasoning_reaches_anthropic_as_thinking_with_room_for_the_answer() -> None:
    sent = chat_to_anthropic({**CHAT_BASE, "reasoning_effort": "medium"}, "c", stream=True)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert sent["max_tokens"] == DEFAULT_MAX_TOKENS + 8192
    assert sent["stream"] is True
    limited = chat_to_anthropic({**CHAT_BASE, "reasoning_effort": "medium",
                                 "max_completion_tokens": 3000}, "c", stream=False)
    assert limited["thinking"]["budget_tokens"] == 2999
    assert limited["max_tokens"] == 3000


def test_messages_thinking_and_format_reach_openai() -> None:
    body = {**MESSAGES_BASE, "thinking": {"type": "enabled", "budget_tokens": 16384},
            "output_config": {"format": {"type": "json_schema", "schema": STRICT}}}
    sent = canonical_to_openai(body, "gpt-b", stream=False, max_tokens_field="max_tokens")
    assert sent["reasoning_effort"] == "high"
    assert sent["response_format"]["json_schema"]["schema"] == STRICT
    effort = canonical_to_openai({**body, "output_config": {"effort": "xhigh"}}, "gpt-b",
                                 stream=False)
    assert effort["reasoning_effort"] == "xhigh"  # an explicit level wins over the budget
    adaptive = canonical_to_openai({**MESSAGES_BASE, "thinking": {"type": "adaptive"}}, "g",
                                   stream=False)
    assert "reasoning_effort" not in adaptive


def test_structured_output_sampling_and_thinking_reach_gemini() -> None:
    body = {**MESSAGES_BASE, "top_k": 20, "thinking": {"type": "adaptive"},
            "output_config": {"format": {"type": "json_schema", "schema": STRICT}}}
    config = canonical_to_gemini(body)["generationConfig"]
    assert config == {"maxOutputTokens": 500, "topK": 20, "responseMimeType": "application/json",
                      "responseJsonSchema": STRICT, "thinkingConfig": {"thinkingBudget": -1}}
    chat = {**CHAT_BASE, "seed": 3, "frequency_penalty": 0.2, "presence_penalty": -0.1,
            "reasoning_effort": "low", "response_format": {"type": "json_object"}}
    config = chat_to_gemini(chat)["generationConfig"]
    assert config == {"seed": 3, "frequencyPenalty": 0.2, "presencePenalty": -0.1,
                      "responseMimeType": "application/json",
                      "thinkingConfig": {"thinkingBudget": 2048}}
    assert "maxOutputTokens" not in config  # none was sent, none is invented


def test_openai_to_canonical_carries_user_ids_and_formats() -> None:
    canonical = openai_to_canonical({**CHAT_BASE, "safety_identifier": "s-1"}).canonical
    assert canonical["metadata"] == {"user_id": "s-1"}
    both = openai_to_canonical({**CHAT_BASE, "safety_identifier": "s-1", "user": "u"}).canonical
    assert both["metadata"] == {"user_id": "u"}
    assert openai_to_canonical({**CHAT_BASE, "response_format": {"type": "json_object"}}).json_mode


def test_the_reserved_output_is_the_worst_the_backend_may_produce() -> None:
    assert output_ceiling(MESSAGES, MESSAGES_BASE, 500, "openai", 128000) == 500
    # No caller limit: nothing is sent to OpenAI, which may then run to the model's maximum.
    assert output_ceiling(CHAT, CHAT_BASE, None, "openai", 128000) == 128000
    assert output_ceiling(CHAT, CHAT_BASE, None, "gemini", None) == DEFAULT_MAX_TOKENS
    # Anthropic is sent the default, plus the thinking budget when reasoning.
    assert output_ceiling(CHAT, CHAT_BASE, None, "anthropic", 64000) == DEFAULT_MAX_TOKENS
    reasoning = {**CHAT_BASE, "reasoning_effort": "high"}
    assert output_ceiling(CHAT, reasoning, None, "anthropic", 64000) == DEFAULT_MAX_TOKENS + 16384


def test_json_answers_round_trip_as_json() -> None:
    message = json_tool_answer({"content": [{"type": "tool_use", "name": JSON_TOOL,
                                             "input": {"é": [1, 2]}}]})
    assert json.loads(message["content"][0]["text"]) == {"é": [1, 2]}
