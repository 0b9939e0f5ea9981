"""Which model served a call (issue 12, point 6), through both surfaces on both stores: after a
fallback the router's choice and the model that answered differ, and the ledger says both
(Routed.chosen_model, Completed.served_model), as do `routing_outcomes` (chosen_model,
served_model) and the decision endpoint (chosen, served_model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.database import Database
from adapters.store import EventStore
from app.jobs.projector import catch_up_once
from domain.context import audit_context
from domain.ids import parse_inference_id
from domain.inference import Inference
from projections.ledger_event import event_object
from projections.view import Session
from tests.fakes.upstream import FakeUpstream, http_error, start_fake_upstream
from tests.harness.contract import InProcessGateway, World, model_toml, prepare_world, serve_world

MODELS = (
    model_toml("fake-cheap", "openai", "0.55", "0.10 0.40", True)
    + model_toml("fake-gpt", "openai", "0.70", "1.00 4.00", True)
    + model_toml("fake-claude", "anthropic", "0.80", "3.00 15.00", True)
)
SURFACES = ["messages", "chat"]


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
def world(database_url: str, admin_store: EventStore, fake: FakeUpstream,
          tmp_path: Path) -> World:
    return prepare_world(database_url, admin_store, fake, tmp_path, MODELS)


def by_type(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["type"]: e for e in events}


async def events_of(gw: InProcessGateway, response: Any) -> dict[str, dict[str, Any]]:
    return by_type(await gw.events(response.headers["x-ainfera-inference-id"]))


async def decision_of(gw: InProcessGateway, response: Any) -> dict[str, Any]:
    public_id = response.headers["x-ainfera-inference-id"]
    decision = await gw.read(f"/v1/inferences/{public_id}/decision")
    assert decision.status_code == 200, decision.text
    body: dict[str, Any] = decision.json()
    return body


async def outcome_row(gw: InProcessGateway, world: World, response: Any) -> tuple[Any, ...]:
    """(chosen_model, served_model) of the call's routing_outcomes row, read once the
    projections hold every call (a consistent read waits for them)."""
    assert (await gw.read("/v1/caps/rollup")).status_code == 200
    inference_id = str(parse_inference_id(response.headers["x-ainfera-inference-id"]))
    database = Database.from_url(world.database_url)
    conn = database.connect()
    try:
        rows = Session(conn, database.kind).execute(
            "SELECT chosen_model, served_model FROM routing_outcomes WHERE inference_id = %s",
            (inference_id,))
    finally:
        conn.close()
    assert len(rows) == 1
    return tuple(rows[0])


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_fallback_records_the_chosen_and_the_served_model(
        world: World, surface: str, stream: bool) -> None:
    world.fake.script("up-fake-cheap", http_error(503))
    async with serve_world(world) as gw:
        response = await gw.call(surface, "ainfera-inference", stream=stream)
        assert response.status_code == 200, response.text
        # The answer names the model that served it, streamed or not.
        assert '"model":"fake-gpt"' in response.text.replace(" ", "")
        events = await events_of(gw, response)
        decision = await decision_of(gw, response)
        row = await outcome_row(gw, world, response)
    assert events["Routed"]["chosen_model"] == "fake-cheap"
    assert events["Completed"]["status"] == "fallback_succeeded"
    assert events["Completed"]["served_model"] == "fake-gpt"
    assert (decision["chosen"], decision["served_model"]) == ("fake-cheap", "fake-gpt")
    assert row == ("fake-cheap", "fake-gpt")


@pytest.mark.parametrize("surface", SURFACES)
async def test_served_model_is_the_chosen_one_pinned_or_not_and_none_when_nothing_served(
        world: World, surface: str) -> None:
    async with serve_world(world) as gw:
        routed_call = await gw.call(surface, "ainfera-inference")
        routed = await events_of(gw, routed_call)
        pinned_call = await gw.call(surface, "fake-claude")
        pinned = await events_of(gw, pinned_call)
        world.fake.script("up-fake-claude", http_error(503))
        failed = await gw.call(surface, "fake-claude")
        assert failed.status_code == 502
        failed_events = await events_of(gw, failed)
        decisions = [await decision_of(gw, r) for r in (routed_call, pinned_call, failed)]
        row = await outcome_row(gw, world, routed_call)
    assert [(d["router"], d["chosen"], d["served_model"]) for d in decisions] == [
        ("ainfera-inference", "fake-cheap", "fake-cheap"),
        ("direct", "fake-claude", "fake-claude"),
        ("direct", "fake-claude", None)]
    assert row == ("fake-cheap", "fake-cheap")
    assert (routed["Routed"]["chosen_model"], routed["Completed"]["served_model"]) == (
        "fake-cheap", "fake-cheap")
    assert (pinned["Routed"]["chosen_model"], pinned["Completed"]["served_model"]) == (
        "fake-claude", "fake-claude")
    assert failed_events["Completed"]["status"] == "failed"
    assert failed_events["Completed"]["served_model"] is None


def test_a_completed_event_stored_before_served_model_still_loads(
        admin_store: EventStore) -> None:
    """A Completed recorded before the field existed has no such key: it loads, reads as None,
    and its ledger object (hence its leaf hash) is what it always was."""
    with audit_context("tenant-1", "agent-1", "req-1"):
        inference = Inference(
            api="messages", requested_model="m", router="direct", alias_hit=None,
            candidates=[], chosen_model="m", policy={}, ruleset_hash="sha256:x", stream=False,
            tools=0, request_digest="d")
        inference.complete("succeeded", "end_turn", None, 10, None, served_model="m")
    events = inference.collect_events()
    del events[1].__dict__["served_model"]  # the shape of a stored event of then
    admin_store.save_events(events)
    loaded = admin_store.get(inference.id, Inference)
    assert (loaded.status, loaded.served_model) == ("succeeded", None)
    stored = admin_store.events_of(inference.id)[1]
    assert "served_model" not in event_object(stored, 1)
    # Projected, it is NULL: what migration 0008 gives rows projected before the field existed.
    database = admin_store.database
    catch_up_once(database, admin_store, ["decisions"], batch_size=100)
    conn = database.connect()
    try:
        rows = Session(conn, database.kind).execute(
            "SELECT chosen_model, served_model FROM decisions WHERE inference_id = %s",
            (str(inference.id),))
    finally:
        conn.close()
    assert [tuple(r) for r in rows] == [("m", None)]
