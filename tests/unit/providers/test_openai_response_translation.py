"""Canonical messages to and from OpenAI `chat.completion` objects."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from domain.protocols.canonical import TranslationError
from domain.protocols.openai_response import canonical_to_completion, completion_to_canonical

TOOL_MESSAGE: dict[str, Any] = {
    "id": "msg_upstream",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
    },
}


def test_a_tool_use_message_becomes_a_chat_completion_the_sdk_parses() -> None:
    body = canonical_to_completion(TOOL_MESSAGE, id="chatcmpl-ours", model="asked-for", created=7)
    completion = ChatCompletion.model_validate(body)
    assert completion.id == "chatcmpl-ours"
    assert completion.model == "asked-for"
    assert completion.created == 7
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    [call] = choice.message.tool_calls or []
    assert call.id == "toolu_1"
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'
    # OpenAI's prompt count includes cached input; Anthropic's input_tokens does not.
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 130
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == 135
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 100


def test_id_and_model_default_to_the_message_own() -> None:
    body = canonical_to_completion(TOOL_MESSAGE)
    assert (body["id"], body["model"]) == ("msg_upstream", "claude-x")


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reason_mapping(stop_reason: str | None, finish_reason: str) -> None:
    message = {**TOOL_MESSAGE, "content": [], "stop_reason": stop_reason}
    assert canonical_to_completion(message)["choices"][0]["finish_reason"] == finish_reason


def upstream_completion(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Sunny.",
                    "tool_calls": [
                        {"id": "call_9", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59,
                  "prompt_tokens_details": {"cached_tokens": 30}},
    }  # fmt: skip
    body.update(overrides)
    return body


def test_an_upstream_completion_becomes_canonical() -> None:
    message, usage = completion_to_canonical(upstream_completion())
    assert message["content"] == [
        {"type": "text", "text": "Sunny."},
        {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert (message["id"], message["model"]) == ("chatcmpl-up", "gpt-x")
    assert usage == {"input_tokens": 20, "output_tokens": 9, "cache_read": 30, "cache_write": None}
    assert message["usage"]["input_tokens"] == 20
    assert message["usage"]["cache_read_input_tokens"] == 30


def test_a_completion_without_usage_reports_unknown_not_zero() -> None:
    body = upstream_completion()
    del body["usage"]
    _, usage = completion_to_canonical(body)
    assert usage == {"input_tokens": None, "output_tokens": None, "cache_read": None,
                     "cache_write": None}  # fmt: skip


def test_a_refusal_is_text_with_stop_reason_refusal() -> None:
    reply = {"role": "assistant", "content": None, "refusal": "I can't help."}
    choice = {"index": 0, "finish_reason": "stop", "message": reply}
    message, _ = completion_to_canonical(upstream_completion(choices=[choice]))
    assert message["content"] == [{"type": "text", "text": "I can't help."}]
    assert message["stop_reason"] == "refusal"


@pytest.mark.parametrize(
    "choices",
    [
        [],
        [{"index": 0, "finish_reason": "tool_calls", "message": {"tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{trunc"}}]}}],
    ],
)  # fmt: skip
def test_an_unreadable_completion_raises(choices: list[Any]) -> None:
    with pytest.raises(TranslationError):
        completion_to_canonical(upstream_completion(choices=choices))
