"""Refusals as the API contract states them, through both surfaces on both stores: the error
code reaches callers of both protocols (OpenAI's `error.code`, and `x-ainfera-error-code` on
both, since Anthropic's error body has no code), and the kept differences of docs/gateway.md
hold: an unknown model is 404 `model_not_found` with nothing recorded; a floor rejection is a
recorded inference (Routed, Completed rejected_floor) with an id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.store import EventStore
from tests.fakes.upstream import FakeUpstream, start_fake_upstream
from tests.harness.contract import World, model_toml, prepare_world, serve_world

MODELS = model_toml("fake-gpt", "openai", "0.70", "1.00 4.00", True)
SURFACES = ["messages", "chat"]


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
def world(database_url: str, admin_store: EventStore, fake: FakeUpstream,
          tmp_path: Path) -> World:
    return prepare_world(database_url, admin_store, fake, tmp_path, MODELS)


def code_of(surface: str, response: httpx.Response) -> str:
    """The error code as a caller of `surface` reads it; both places must agree."""
    body: dict[str, Any] = response.json()
    header = response.headers["x-ainfera-error-code"]
    if surface == "chat":
        assert body["error"]["code"] == header
    else:
        assert body["type"] == "error"
        assert set(body["error"]) == {"type", "message"}  # Anthropic's shape, unchanged
    return header


@pytest.mark.parametrize("surface", SURFACES)
async def test_an_unknown_model_is_404_model_not_found_and_records_nothing(
        world: World, surface: str) -> None:
    before = world.store.max_notification_id()
    async with serve_world(world) as gw:
        response = await gw.call(surface, "gpt-17")
    assert response.status_code == 404
    assert code_of(surface, response) == "model_not_found"
    assert "x-ainfera-inference-id" not in response.headers
    assert world.store.max_notification_id() == before
    assert world.fake.requests == []


@pytest.mark.parametrize("surface", SURFACES)
async def test_a_floor_rejection_is_422_and_a_recorded_inference(
        world: World, surface: str) -> None:
    async with serve_world(world) as gw:
        response = await gw.call(surface, "ainfera-inference",
                                 routing_hint={"min_quality": "0.99"})
        assert response.status_code == 422
        assert code_of(surface, response) == "rejected_floor"
        events = await gw.events(response.headers["x-ainfera-inference-id"])
    assert [e["type"] for e in events] == ["Routed", "Completed"]
    assert events[1]["status"] == "rejected_floor"
    assert world.fake.requests == []
