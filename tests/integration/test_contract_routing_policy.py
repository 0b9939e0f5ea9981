"""The routing policy as recorded, through both surfaces on both stores (issue 12, point 2):
`ruleset_hash` covers what decides the route (catalog, effective floor, ordering rule), so
`balanced` records exactly what no preference records, an inert preference (gate off) changes
nothing recorded about the policy, and the gate alone never moves the hash; the requested
preference and the gate's state are recorded beside the policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.store import EventStore
from app.jobs.projector import catch_up_once
from domain.context import audit_context
from domain.inference import Inference
from projections.ledger_event import event_object
from projections.view import Session
from tests.fakes.upstream import FakeUpstream, start_fake_upstream
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


async def routed_with(gw: InProcessGateway, surface: str,
                      preference: str | None) -> dict[str, Any]:
    """The call's Routed event; its decision (the read model) must say the same."""
    hint = {} if preference is None else {"routing_hint": {"routing_preference": preference}}
    response = await gw.call(surface, "ainfera-inference", **hint)
    assert response.status_code == 200, response.text
    routed = await gw.routed(response)
    decision = await gw.read(
        f"/v1/inferences/{response.headers['x-ainfera-inference-id']}/decision")
    assert decision.status_code == 200, decision.text
    assert {k: decision.json()[k] for k in ("policy", "ruleset_hash", "requested_preference")} \
        == {k: routed[k] for k in ("policy", "ruleset_hash", "requested_preference")}
    return routed


@pytest.mark.parametrize("surface", SURFACES)
async def test_gate_off_every_preference_records_the_policy_of_no_preference(
        world: World, surface: str) -> None:
    async with serve_world(world) as gw:
        recorded = {p: await routed_with(gw, surface, p)
                    for p in (None, "balanced", "quality", "cost")}
    plain = recorded[None]
    assert plain["policy"] == {"min_quality": "0.5", "routing_preference": "balanced",
                               "preference_live": False}
    for preference, routed in reversed(recorded.items()):
        assert routed["policy"] == plain["policy"], preference
        assert routed["ruleset_hash"] == plain["ruleset_hash"], preference
        assert routed["candidates"] == plain["candidates"], preference
        assert routed["chosen_model"] == "fake-cheap"
        # What the client asked for is on the ledger, beside the policy.
        assert routed["requested_preference"] == (preference or "balanced")


@pytest.mark.parametrize("surface", SURFACES)
async def test_the_gate_moves_the_hash_only_when_a_preference_moves_the_floor(
        world: World, surface: str) -> None:
    async with serve_world(world) as gw:
        off = await routed_with(gw, surface, "balanced")
    async with serve_world(world, routing_preference_live=True) as gw:
        on = await routed_with(gw, surface, "balanced")
        plain = await routed_with(gw, surface, None)
        quality = await routed_with(gw, surface, "quality")
    # The gate's state is recorded, and the hash stays: nothing about the route changed.
    assert (off["policy"]["preference_live"], on["policy"]["preference_live"]) == (False, True)
    assert on["ruleset_hash"] == off["ruleset_hash"]
    assert {k: v for k, v in on.items() if k in {"policy", "ruleset_hash", "candidates",
                                                  "chosen_model", "requested_preference"}} == \
        {k: v for k, v in plain.items() if k in {"policy", "ruleset_hash", "candidates",
                                                 "chosen_model", "requested_preference"}}
    # A live preference that moves the floor is a different policy, and routes differently.
    assert quality["policy"] == {"min_quality": "0.6", "routing_preference": "quality",
                                 "preference_live": True}
    assert quality["ruleset_hash"] != on["ruleset_hash"]
    assert quality["chosen_model"] == "fake-gpt"
    assert quality["requested_preference"] == "quality"


def test_a_routed_event_stored_before_requested_preference_still_loads(
        admin_store: EventStore) -> None:
    """A Routed recorded before the field existed has no such key in its stored state: it
    loads, reads as None, and its ledger object (hence its leaf hash) is what it always was."""
    with audit_context("tenant-1", "agent-1", "req-1"):
        inference = Inference(
            api="messages", requested_model="ainfera-inference", router="ainfera-inference",
            alias_hit=None, candidates=[], chosen_model="m",
            policy={"min_quality": "0.5", "routing_preference": "quality",
                    "preference_live": False},
            ruleset_hash="sha256:x", stream=False, tools=0, request_digest="d")
    events = inference.collect_events()
    del events[0].__dict__["requested_preference"]  # the shape of a stored event of then
    admin_store.save_events(events)
    loaded = admin_store.get(inference.id, Inference)
    assert loaded.requested_preference is None
    assert loaded.policy["routing_preference"] == "quality"
    (stored,) = admin_store.events_of(inference.id)
    assert "requested_preference" not in event_object(stored, 0)
    # Projected, it is NULL: what migration 0008 gives rows projected before the field existed.
    database = admin_store.database
    catch_up_once(database, admin_store, ["decisions", "routing_outcomes"], batch_size=100)
    conn = database.connect()
    try:
        session = Session(conn, database.kind)
        for table in ("decisions", "routing_outcomes"):
            rows = session.execute(f"SELECT requested_preference FROM {table} "
                                   "WHERE inference_id = %s", (str(inference.id),))
            assert [tuple(r) for r in rows] == [(None,)], table
    finally:
        conn.close()
