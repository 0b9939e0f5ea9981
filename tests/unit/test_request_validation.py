"""Malformed requests are refused at the edge with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from domain.protocols.validate import InvalidRequest, check_chat_request, check_messages_request

OK: dict[str, Any] = {"model": "m", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "hi"}]}


def test_well_formed_requests_pass() -> None:
    check_messages_request({
        **OK, "system": [{"type": "text", "text": "be brief"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1",
                                               "name": "w", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": "sunny"}]},
        ],
        "tools": [{"name": "w", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "w"},
    })
    check_chat_request({"model": "m", "messages": [
        {"role": "system", "content": "x"}, {"role": "user", "content": [{"type": "text"}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "r"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]})


@pytest.mark.parametrize(("change", "param"), [
    ({"messages": [{"content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "text"}]}]},
     "messages[0].content[0].text"),
    ({"messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
     "messages[0].content[0].tool_use_id"),
    ({"system": 3}, "system"),
    ({"tools": {"name": "x"}}, "tools"),
    ({"tools": [{"name": ""}]}, "tools[0].name"),
    ({"tools": [{"name": "x", "input_schema": "{}"}]}, "tools[0].input_schema"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
])
def test_messages_faults_name_their_field(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_messages_request({**OK, **change})
    assert caught.value.param == param


@pytest.mark.parametrize(("messages", "tools", "param"), [
    ([{"role": "wizard", "content": "x"}], None, "messages[0].role"),
    ([{"role": "user", "content": 1}], None, "messages[0].content"),
    ([{"role": "user", "content": [1]}], None, "messages[0].content"),
    ([{"role": "assistant", "tool_calls": [{"function": {}}]}], None,
     "messages[0].tool_calls[0].function.name"),
    ([{"role": "user", "content": "x"}], [{"type": "function"}], "tools[0].function.name"),
    ([{"role": "user", "content": "x"}], "f", "tools"),
])
def test_chat_faults_name_their_field(messages: list[Any], tools: Any, param: str) -> None:
    body: dict[str, Any] = {"model": "m", "messages": messages}
    if tools is not None:
        body["tools"] = tools
    with pytest.raises(InvalidRequest) as caught:
        check_chat_request(body)
    assert caught.value.param == param
