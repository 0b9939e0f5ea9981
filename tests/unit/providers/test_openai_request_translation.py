"""OpenAI chat requests to and from canonical (Anthropic Messages) requests."""

from __future__ import annotations

from typing import Any

import pytest

from domain.protocols.canonical import UnsupportedRequest
from domain.protocols.openai_request import canonical_to_openai, openai_to_canonical

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CONVERSATION: dict[str, Any] = {
    "model": "gpt-x",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "25C"}]},
        {"role": "user", "content": "Thanks, which is warmer?"},
    ],
    "tools": [WEATHER_TOOL],
    "max_completion_tokens": 256,
    "stop": "END",
    "temperature": 0.2,
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "end-user-7",
    "seed": 42,
}  # fmt: skip


def test_a_tool_conversation_becomes_canonical() -> None:
    translated = openai_to_canonical(CONVERSATION)
    canonical = translated.canonical
    assert canonical["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use tools."},
    ]
    assert canonical["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather",
                 "input": {"city": "Rome"}},
            ],
        },
        {
            # Tool results and the next user text share one user turn, results first.
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "25C"},
                {"type": "text", "text": "Thanks, which is warmer?"},
            ],
        },
    ]  # fmt: skip
    assert canonical["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert canonical["max_tokens"] == 256
    assert canonical["stop_sequences"] == ["END"]
    assert canonical["temperature"] == 0.2
    assert canonical["stream"] is True
    assert canonical["metadata"] == {"user_id": "end-user-7"}
    assert translated.include_usage is True
    # seed has no Anthropic counterpart (its fate: dropped) and is not in the canonical form.
    assert "seed" not in canonical


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, None,
         {"type": "tool", "name": "get_weather"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)  # fmt: skip
def test_tool_choice_mapping(choice: Any, parallel: Any, expected: dict[str, Any]) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL]}
    body |= {"tool_choice": choice, "parallel_tool_calls": parallel}
    assert openai_to_canonical(body).canonical["tool_choice"] == expected


def test_max_tokens_falls_back_to_the_legacy_field_and_none_is_invented() -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert "max_tokens" not in openai_to_canonical(body).canonical
    assert openai_to_canonical({**body, "max_tokens": 5}).canonical["max_tokens"] == 5
    both = {**body, "max_tokens": 5, "max_completion_tokens": 7}
    assert openai_to_canonical(both).canonical["max_tokens"] == 7


def test_an_image_data_url_becomes_a_base64_image_block() -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}]}
    [turn] = openai_to_canonical(body).canonical["messages"]
    assert turn["content"] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
        }
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"n": 2, "messages": []},
        {"messages": [{"role": "function", "name": "f", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        {"messages": [], "tools": [{"type": "custom", "custom": {"name": "x"}}]},
        {"messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{bad"}}]}]},
    ],
)  # fmt: skip
def test_what_cannot_be_carried_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedRequest):
        openai_to_canonical({"model": "m", **body})


def test_canonical_to_openai_for_a_compatible_backend() -> None:
    canonical = openai_to_canonical(CONVERSATION).canonical
    canonical["tool_choice"] = {"type": "any", "disable_parallel_tool_use": True}
    body = canonical_to_openai(canonical, "backend-model", stream=True)
    assert body["model"] == "backend-model"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief.\n\nUse tools."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25C"},
        {"role": "user", "content": "Thanks, which is warmer?"},
    ]  # fmt: skip
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert body["max_tokens"] == 256
    assert body["stop"] == ["END"]
    assert body["user"] == "end-user-7"
    # The ledger needs token counts, so a stream always asks for the usage chunk.
    assert body["stream_options"] == {"include_usage": True}


def test_canonical_to_openai_translates_thinking_and_the_limit_field() -> None:
    # top_k has no OpenAI counterpart: its fate is "refused" (domain/protocols/fates.py), so
    # the provider stops such a request before translating; thinking is translated.
    canonical = {
        "model": "m",
        "max_tokens": 10,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "hi"}],
    }
    body = canonical_to_openai(
        canonical, "b", stream=False, max_tokens_field="max_completion_tokens"
    )
    assert body == {
        "model": "b",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 10,
        "reasoning_effort": "minimal",
    }


def test_images_and_named_tool_choice_reach_a_compatible_backend() -> None:
    source = {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}
    canonical = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"}, {"type": "image", "source": source}]}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"},
    }  # fmt: skip
    body = canonical_to_openai(canonical, "b", stream=False)
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}


def test_server_tools_cannot_go_to_a_compatible_backend() -> None:
    canonical = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    with pytest.raises(UnsupportedRequest):
        canonical_to_openai(canonical, "b", stream=False)
