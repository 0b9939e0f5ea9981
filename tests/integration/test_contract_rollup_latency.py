"""`GET /v1/caps/rollup` `latency_p50_ms` (issue 12, point 4), on both stores: the median of
routed calls only (routing_outcomes, completed in the last 24 h), `null` for a tenant whose
calls were all passthroughs, however slow those were."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.store import EventStore
from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text
from tests.harness.contract import World, model_toml, prepare_world, serve_world

MODELS = (
    model_toml("fake-gpt", "openai", "0.70", "1.00 4.00", True)
    + model_toml("fake-claude", "anthropic", "0.80", "3.00 15.00", True)
)
# Passthroughs slower than any routed call here, so a median over every call would be theirs.
SLOW_S = 1.5


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
def world(database_url: str, admin_store: EventStore, fake: FakeUpstream,
          tmp_path: Path) -> World:
    made = prepare_world(database_url, admin_store, fake, tmp_path, MODELS)
    fake.script("up-fake-claude", text("slow", first_byte_delay=SLOW_S))
    return made


async def test_rollup_latency_is_the_median_of_routed_calls_only(world: World) -> None:
    async with serve_world(world) as gw:
        routed = await gw.call("messages", "ainfera-inference")
        assert routed.status_code == 200
        slow = await asyncio.gather(  # two slow passthroughs for acme, one for globex
            gw.call("messages", "fake-claude"), gw.call("chat", "fake-claude"),
            gw.call("chat", "fake-claude", key=gw.other_key))
        assert [r.status_code for r in slow] == [200, 200, 200]
        completed = [e for e in await gw.events(routed.headers["x-ainfera-inference-id"])
                     if e["type"] == "Completed"]
        acme = await gw.read("/v1/caps/rollup")
        globex = await gw.read("/v1/caps/rollup", key=gw.other_key)
    assert acme.status_code == globex.status_code == 200
    assert completed[0]["latency_ms"] < SLOW_S * 1000
    assert acme.json()["latency_p50_ms"] == completed[0]["latency_ms"]
    # Only passthroughs: no routed call to take a median of.
    assert globex.json()["latency_p50_ms"] is None
