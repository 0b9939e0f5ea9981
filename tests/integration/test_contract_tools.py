"""Tools and backends that cannot take them (issue 12, points 1 and 7), through both surfaces
on both stores. A model marked `supports_tools = false`, or one that takes no tools over the
protocol its provider speaks (`tools_unsupported_on`, e.g. an OpenAI Responses-only model
reached through Chat Completions), pinned with tools: 422 `tools_not_supported_by_backend`
naming the slug, with a hint; nothing recorded, nothing sent. Routed: such models are passed
over, and when no model can take tools the recorded refusal carries the same code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.store import EventStore
from tests.fakes.upstream import FakeUpstream, start_fake_upstream
from tests.harness.contract import World, model_toml, prepare_world, serve_world

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = {
    "messages": [{"name": "get_weather", "description": "Weather for a city",
                  "input_schema": SCHEMA}],
    "chat": [{"type": "function", "function": {"name": "get_weather",
                                               "description": "Weather for a city",
                                               "parameters": SCHEMA}}],
}
SURFACES = ["messages", "chat"]
NO_TOOLS = model_toml("fake-notools", "openai", "0.60", "0.10 0.40", False)
# Cheaper than any tool-capable model and above the floor: the router would pick it for tools
# if the catalog could not say its tools do not work over chat.completions.
RESPONSES_ONLY = model_toml("fake-resp", "openai", "0.90", "0.20 0.80", True,
                            tools_unsupported_on=["chat.completions"])
CAPABLE = (model_toml("fake-gpt", "openai", "0.70", "1.00 4.00", True)
           + model_toml("fake-claude", "anthropic", "0.80", "3.00 15.00", True))


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
def world(database_url: str, admin_store: EventStore, fake: FakeUpstream,
          tmp_path: Path) -> World:
    return prepare_world(database_url, admin_store, fake, tmp_path,
                         NO_TOOLS + RESPONSES_ONLY + CAPABLE)


@pytest.fixture
def toolless_world(database_url: str, admin_store: EventStore, fake: FakeUpstream,
                   tmp_path: Path) -> World:
    """No model here can take tools over its provider's protocol."""
    return prepare_world(database_url, admin_store, fake, tmp_path, NO_TOOLS + RESPONSES_ONLY)


def error_of(surface: str, response: httpx.Response) -> tuple[str, str]:
    """(code, message) as a caller of `surface` reads them."""
    body: dict[str, Any] = response.json()
    code = response.headers["x-ainfera-error-code"]
    if surface == "chat":
        assert (body["error"]["code"], body["error"]["param"]) == (code, "model")
    else:
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
    return code, str(body["error"]["message"])


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(("model", "because"), [
    ("fake-notools", "supports_tools = false"),
    ("fake-resp", "tools_unsupported_on includes 'chat.completions'"),
])
async def test_a_pinned_backend_without_tools_is_422_naming_it_with_a_hint(
        world: World, surface: str, model: str, because: str) -> None:
    before = world.store.max_notification_id()
    async with serve_world(world) as gw:
        refused = await gw.call(surface, model, tools=TOOLS[surface])
        assert refused.status_code == 422, refused.text
        code, message = error_of(surface, refused)
        # Without tools the same model serves the call: only the tools were the problem.
        plain = await gw.call(surface, model)
        assert plain.status_code == 200, plain.text
    assert code == "tools_not_supported_by_backend"
    assert f"model {model!r} does not support tools" in message
    assert because in message
    assert "'ainfera-inference', which only picks models that support tools" in message
    assert message.endswith("pin one that does: fake-gpt, fake-claude")
    assert refused.headers["x-should-retry"] == "false"
    # Refused from the request and the catalog alone: nothing recorded, nothing sent.
    assert "x-ainfera-inference-id" not in refused.headers
    assert world.store.max_notification_id() == before + 4  # the plain call's events only
    assert len(world.fake.requests) == 1


@pytest.mark.parametrize("surface", SURFACES)
async def test_the_router_passes_over_backends_that_take_no_tools_on_their_protocol(
        world: World, surface: str) -> None:
    async with serve_world(world) as gw:
        plain = await gw.routed(await gw.call(surface, "ainfera-inference"))
        response = await gw.call(surface, "ainfera-inference", tools=TOOLS[surface])
        assert response.status_code == 200, response.text
        with_tools = await gw.routed(response)
    assert plain["chosen_model"] == "fake-notools"
    assert with_tools["chosen_model"] == "fake-gpt"
    reasons = {c["model"]: c["rejection_reason"] for c in with_tools["candidates"]}
    assert reasons == {"fake-notools": "tools_unsupported", "fake-resp": "tools_unsupported",
                       "fake-gpt": None, "fake-claude": None}


@pytest.mark.parametrize("surface", SURFACES)
async def test_a_routed_call_no_backend_can_take_tools_for_is_refused_with_the_same_code(
        toolless_world: World, surface: str) -> None:
    async with serve_world(toolless_world) as gw:
        refused = await gw.call(surface, "ainfera-inference", tools=TOOLS[surface])
        assert refused.status_code == 422, refused.text
        code, message = error_of(surface, refused)
        events = await gw.events(refused.headers["x-ainfera-inference-id"])
    assert code == "tools_not_supported_by_backend"
    assert message.startswith("no model in the catalog supports tools")
    # Still a recorded refusal, like any call no model may serve.
    assert [e["type"] for e in events] == ["Routed", "Completed"]
    assert events[1]["status"] == "rejected_floor"
    assert {c["rejection_reason"] for c in events[0]["candidates"]} == {"tools_unsupported"}
    assert toolless_world.fake.requests == []
