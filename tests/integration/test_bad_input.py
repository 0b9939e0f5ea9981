"""Malformed input never costs a 500 (issue 10, findings 5 and 8): each input found by attack
is a 400 in the caller's protocol shape that names the field, nothing is recorded for it, and no
message the caller reads is a Python repr."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from litestar.testing import AsyncTestClient

from domain.protocols.validate import MAX_DEPTH
from tests.fakes.upstream import FakeUpstream, start_fake_upstream
from tests.harness.inprocess import InProcess, async_gateway
from upstream_sim.scripts import garbage

Client = AsyncTestClient[Any]
MESSAGES = "/v1/messages"
CHAT = "/v1/chat/completions"
# What a Python repr or traceback text looks like in a message.
INTERNALS = re.compile(r"[A-Z][a-zA-Z]+Error\(|object has no attribute|Traceback|'list' object")


@pytest.fixture
def fake() -> Any:
    with start_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
async def gateway(tmp_path: Path, fake: FakeUpstream) -> AsyncIterator[tuple[Client, InProcess]]:
    async with async_gateway(f"sqlite:///{tmp_path}/bad.db", fake, tmp_path) as pair:
        yield pair


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def with_nested_field(body: dict[str, Any], depth: int) -> bytes:
    """The body's JSON with `"extra"` nested `depth` objects deep, written by hand: the JSON
    encoders a client would use stop far short of the depths attackers send."""
    head = orjson.dumps(body)[:-1]
    return head + b',"extra":' + b'{"a":' * depth + b'"x"' + b"}" * depth + b"}"


def deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"p": schema}}
    return schema


def messages_body(**fields: Any) -> dict[str, Any]:
    return {"model": "fake-claude", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}], **fields}


def chat_body(**fields: Any) -> dict[str, Any]:
    return {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}], **fields}


async def refused(gateway: tuple[Client, InProcess], path: str, body: Any,
                  raw: bytes | None = None) -> dict[str, Any]:
    """Posts; asserts a 400 in the path's protocol shape with nothing recorded; returns the
    error object."""
    client, world = gateway
    before = world.recorded()
    headers = {"x-api-key": world.key, "content-type": "application/json"}
    if raw is not None:
        response = await client.post(path, content=raw, headers=headers)
    else:
        response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["x-should-retry"] == "false"
    payload = response.json()
    if path == CHAT:
        error: dict[str, Any] = payload["error"]
        assert set(error) == {"message", "type", "param", "code"}
    else:
        assert payload["type"] == "error"
        error = payload["error"]
        assert error["type"] == "invalid_request_error"
    assert not INTERNALS.search(error["message"]), error["message"]
    assert world.recorded() == before, "a refused request recorded events"
    return error


def assert_names(error: dict[str, Any], field: str) -> None:
    """The field is named: in the message on both surfaces, and as `param` on OpenAI's."""
    assert field in error["message"], error["message"]
    if "param" in error:
        assert error["param"] == field


async def test_chat_tool_calls_that_are_not_a_list(gateway: tuple[Client, InProcess]) -> None:
    body = chat_body(messages=[{"role": "user", "content": "hi"},
                               {"role": "assistant", "content": None, "tool_calls": 5}])
    error = await refused(gateway, CHAT, body)
    assert_names(error, "messages[1].tool_calls")


@pytest.mark.parametrize("bad", ["abc", -5, [1], 0, True, 10**12])
async def test_chat_max_tokens_of_the_wrong_kind_behind_a_null(
        gateway: tuple[Client, InProcess], bad: Any) -> None:
    error = await refused(gateway, CHAT, chat_body(max_completion_tokens=None, max_tokens=bad))
    assert_names(error, "max_tokens")


@pytest.mark.parametrize(("path", "body", "param"), [
    (MESSAGES, messages_body(tools=[{"name": "t", "input_schema": deep_schema(150)}]),
     "tools[0].input_schema.properties"),
    (CHAT, chat_body(tools=[{"type": "function",
                             "function": {"name": "t", "parameters": deep_schema(150)}}]),
     "tools[0].function.parameters"),
])
async def test_tool_schemas_nested_300_deep(gateway: tuple[Client, InProcess], path: str,
                                            body: dict[str, Any], param: str) -> None:
    error = await refused(gateway, path, body)
    assert_names(error, param)
    assert f"deeper than {MAX_DEPTH} levels" in error["message"]


@pytest.mark.parametrize("depth", [MAX_DEPTH, 990, 1100])
@pytest.mark.parametrize("path", [MESSAGES, CHAT])
async def test_any_field_nested_deep(gateway: tuple[Client, InProcess], path: str,
                                     depth: int) -> None:
    base = messages_body() if path == MESSAGES else chat_body()
    error = await refused(gateway, path, None, raw=with_nested_field(base, depth))
    if depth < 1024:  # deeper still, the JSON parser refuses it first
        assert_names(error, "extra.a.a.a")


async def test_the_deepest_body_allowed_is_served(gateway: tuple[Client, InProcess]) -> None:
    client, world = gateway
    # The body is level 1 and `extra` level 2: MAX_DEPTH - 2 more objects reach the limit.
    body = messages_body(extra=nested(MAX_DEPTH - 2))
    response = await client.post(MESSAGES, json=body, headers={"x-api-key": world.key})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("path", "body", "param"), [
    (MESSAGES, messages_body(metadata=[]), "metadata"),
    (MESSAGES, messages_body(metadata={"user_id": 5}), "metadata.user_id"),
    (MESSAGES, messages_body(stop_sequences="stop"), "stop_sequences"),
    (MESSAGES, messages_body(max_tokens="many"), "max_tokens"),
    (MESSAGES, messages_body(messages=[{"role": "user", "content": [
        {"type": "image", "source": "http://x"}]}]), "messages[0].content[0].source"),
    (MESSAGES, messages_body(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [5]}]}]),
     "messages[0].content[0].content[0].type"),
    (CHAT, chat_body(stop=5), "stop"),
    (CHAT, chat_body(tools=[{"type": "retrieval", "function": {"name": "f"}}]), "tools[0].type"),
    (CHAT, chat_body(tool_choice={"type": "function"}), "tool_choice"),
    (CHAT, chat_body(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": "http://x"}]}]), "messages[0].content[0].image_url.url"),
    (CHAT, chat_body(messages=[{"role": "assistant", "tool_calls": [
        {"function": {"name": "f", "arguments": "{}"}}]}]), "messages[0].tool_calls[0].id"),
])
async def test_shapes_a_translator_cannot_read_are_named(
        gateway: tuple[Client, InProcess], path: str, body: dict[str, Any], param: str) -> None:
    error = await refused(gateway, path, body)
    assert_names(error, param)


async def test_a_body_that_is_not_json(gateway: tuple[Client, InProcess]) -> None:
    error = await refused(gateway, MESSAGES, None, raw=b'{"model": "fake-claude", ')
    assert error["message"].startswith("request body is not valid JSON")


@pytest.mark.parametrize(("model", "upstream", "body"), [
    ("fake-claude", "up-claude", b"{not json"),
    ("fake-gpt", "up-gpt", b'{"choices": 5}'),
])
async def test_an_unreadable_upstream_answer_is_told_in_words(
        gateway: tuple[Client, InProcess], fake: FakeUpstream, model: str, upstream: str,
        body: bytes) -> None:
    client, world = gateway
    fake.script(upstream, garbage(body))
    response = await client.post(MESSAGES, json=messages_body(model=model),
                                 headers={"x-api-key": world.key})
    assert response.status_code == 502, response.text
    message = response.json()["error"]["message"]
    assert "not a valid response" in message
    assert not INTERNALS.search(message), message
