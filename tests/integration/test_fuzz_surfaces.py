"""Property-based fuzzing of both request surfaces (issue 10): whatever body arrives, the
gateway never answers 5xx because of it (502/529 are the upstream's and the fake never fails
here), and a request refused before an inference exists records nothing. A response that
names an inference (`x-ainfera-inference-id`) must have closed it with exactly one Completed.

Bodies are built from valid requests whose every field may be swapped for arbitrary JSON,
plus nesting far past the limit, so the search spends its time near the shapes the
translators actually read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from domain.ids import parse_inference_id
from tests.fakes.upstream import start_fake_upstream
from tests.harness.inprocess import InProcess, sync_gateway

EXAMPLES = 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=10)


def deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value] if depth % 2 else {"k": value}
    return value


deep_values = st.integers(min_value=1, max_value=400).map(deep)


@st.composite
def maybe(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """Mostly the valid shape (so whole bodies often get past the edge to the translators
    and the upstream), one time in ten anything at all. (The choice is drawn rather than
    left to `one_of`, which would pick junk and the valid shape equally often.)"""
    if draw(st.integers(min_value=0, max_value=9)) == 7:
        return draw(json_values)
    return draw(valid)


models = st.sampled_from(["fake-claude", "fake-gpt", "fake-gemini", "ainfera-inference",
                          "no-such-model"])
short_text = st.text(max_size=16)
schema = maybe(st.fixed_dictionaries({"type": st.just("object"),
                                      "properties": st.just({"city": {"type": "string"}})}))
routing_hint = maybe(st.fixed_dictionaries({}, optional={
    "min_quality": maybe(st.sampled_from(["0.5", "0.9", "2"])),
    "routing_preference": maybe(st.sampled_from(["quality", "balanced", "cost"]))}))

anthropic_block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": maybe(short_text)}),
    st.fixed_dictionaries({"type": st.just("image"), "source": maybe(st.fixed_dictionaries({
        "type": maybe(st.sampled_from(["base64", "url"])), "media_type": st.just("image/png"),
        "data": st.just("iVBORw0K"), "url": st.just("https://example.invalid/a.png")}))}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": maybe(st.just("toolu_1")),
                           "name": maybe(st.just("get_weather")), "input": json_values}),
    st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": maybe(
        st.just("toolu_1")), "content": maybe(short_text | st.lists(st.fixed_dictionaries(
            {"type": st.just("text"), "text": short_text}), max_size=2))}),
    json_values)
anthropic_message = st.fixed_dictionaries({
    "role": maybe(st.sampled_from(["user", "assistant"])),
    "content": maybe(short_text | st.lists(anthropic_block, min_size=1, max_size=3))})
messages_bodies = st.fixed_dictionaries(
    {"model": maybe(models), "max_tokens": maybe(st.integers(min_value=1, max_value=64)),
     "messages": maybe(st.lists(anthropic_message, min_size=1, max_size=3))},
    optional={
        "system": maybe(short_text | st.lists(st.fixed_dictionaries(
            {"type": st.just("text"), "text": short_text}), max_size=2)),
        "tools": maybe(st.lists(st.fixed_dictionaries(
            {"name": maybe(st.just("get_weather")), "input_schema": schema}), max_size=2)),
        "tool_choice": maybe(st.fixed_dictionaries({"type": st.sampled_from(
            ["auto", "any", "tool", "none"]), "name": st.just("get_weather")})),
        "metadata": maybe(st.fixed_dictionaries({"user_id": maybe(short_text)})),
        "stop_sequences": maybe(st.lists(short_text, max_size=2)),
        "temperature": maybe(st.floats(min_value=0, max_value=1)),
        "stream": maybe(st.booleans()),
        "routing_hint": routing_hint,
        "extra": st.one_of(json_values, deep_values),
    })

chat_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": maybe(short_text)}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": maybe(
        st.fixed_dictionaries({"url": maybe(st.sampled_from(
            ["https://example.invalid/a.png", "data:image/png;base64,iVBORw0K"]))}))}),
    json_values)
tool_call = st.fixed_dictionaries({
    "id": maybe(st.just("call_1")), "type": st.just("function"),
    "function": maybe(st.fixed_dictionaries({"name": maybe(st.just("get_weather")),
                                             "arguments": maybe(st.sampled_from(
                                                 ['{"city": "Paris"}', "{not json", "[1]"]))}))})
chat_message = st.fixed_dictionaries(
    {"role": maybe(st.sampled_from(["system", "developer", "user", "assistant", "tool"]))},
    optional={"content": maybe(short_text | st.lists(chat_part, max_size=3)),
              "tool_calls": maybe(st.lists(tool_call, max_size=2)),
              "tool_call_id": maybe(st.just("call_1"))})
chat_bodies = st.fixed_dictionaries(
    {"model": maybe(models), "messages": maybe(st.lists(chat_message, min_size=1, max_size=3))},
    optional={
        "max_tokens": maybe(st.integers(min_value=1, max_value=64)),
        "max_completion_tokens": maybe(st.none() | st.integers(min_value=1, max_value=64)),
        "n": maybe(st.just(1)),
        "stop": maybe(short_text | st.lists(short_text, max_size=2)),
        "tools": maybe(st.lists(st.fixed_dictionaries({
            "type": maybe(st.just("function")), "function": maybe(st.fixed_dictionaries(
                {"name": maybe(st.just("get_weather")), "parameters": schema}))}), max_size=2)),
        "tool_choice": maybe(st.sampled_from(["auto", "none", "required"]) | st.just(
            {"type": "function", "function": {"name": "get_weather"}})),
        "user": maybe(short_text),
        "stream": maybe(st.booleans()),
        "stream_options": maybe(st.fixed_dictionaries({"include_usage": st.booleans()})),
        "routing_hint": routing_hint,
        "extra": st.one_of(json_values, deep_values),
    })


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient[Any],
                                                                        InProcess]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with start_fake_upstream() as fake, sync_gateway(f"sqlite:///{tmp}/fuzz.db", fake,
                                                     tmp) as pair:
        yield pair


def check(gateway: tuple[TestClient[Any], InProcess], path: str, body: dict[str, Any]) -> None:
    client, world = gateway
    before = world.recorded()
    response = client.post(path, json=body, headers={"x-api-key": world.key})
    assert response.status_code < 500, (response.status_code, response.text, body)
    event(f"status {response.status_code}")  # the spread shows in --hypothesis-show-statistics
    public_id = response.headers.get("x-ainfera-inference-id")
    if public_id is None:
        assert world.recorded() == before, ("recorded events for a refused request", body)
        return
    events = world.store.events_of(parse_inference_id(public_id))
    completed = [e for e in events if type(e).__name__ == "Completed"]
    assert len(completed) == 1, (public_id, [type(e).__name__ for e in events], body)


@FUZZ
@given(body=messages_bodies)
def test_messages_surface(gateway: tuple[TestClient[Any], InProcess],
                          body: dict[str, Any]) -> None:
    check(gateway, "/v1/messages", body)


@FUZZ
@given(body=chat_bodies)
def test_chat_surface(gateway: tuple[TestClient[Any], InProcess], body: dict[str, Any]) -> None:
    check(gateway, "/v1/chat/completions", body)
