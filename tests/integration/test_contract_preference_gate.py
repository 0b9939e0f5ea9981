"""The preference gate as a ledger setting (issue 12, point 3), on both stores: the environment
gives the initial value; `ainfera router preference-live on|off` (the real command, another
process) records who set it and when; a running gateway applies it without a restart; each
call's Routed event and its decision say which state it saw; and `ainfera verify` still passes
with the new event kind on the ledger."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.store import EventStore
from domain.ids import router_settings_id
from tests.fakes.upstream import FakeUpstream, start_fake_upstream
from tests.harness.contract import InProcessGateway, World, model_toml, prepare_world, serve_world
from tests.harness.gateway import AINFERA

MODELS = (
    model_toml("fake-cheap", "openai", "0.55", "0.10 0.40", True)
    + model_toml("fake-gpt", "openai", "0.70", "1.00 4.00", True)
)
QUALITY = {"routing_hint": {"routing_preference": "quality"}}
# Gateways trust a read of the gate for 2 s; this is only how long the test is willing to
# wait on a loaded machine, not the promise.
PATIENCE_S = 20.0


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
def world(database_url: str, admin_store: EventStore, fake: FakeUpstream,
          tmp_path: Path) -> World:
    return prepare_world(database_url, admin_store, fake, tmp_path, MODELS)


def ainfera(world: World, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    full_env = {**os.environ, "AINFERA_DATABASE_URL": world.database_url, **(env or {})}
    proc = subprocess.run([AINFERA, *args, "--json"], env=full_env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


async def quality_call(gw: InProcessGateway, surface: str) -> tuple[str, dict[str, Any]]:
    response = await gw.call(surface, "ainfera-inference", **QUALITY)
    assert response.status_code == 200, response.text
    return response.headers["x-ainfera-inference-id"], await gw.routed(response)


async def until_gate(gw: InProcessGateway, surface: str,
                     live: bool) -> tuple[str, dict[str, Any]]:
    """Calls until one sees the gate in state `live`; the calls before it saw the old one."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        public_id, routed = await quality_call(gw, surface)
        if routed["policy"]["preference_live"] is live or time.monotonic() > deadline:
            return public_id, routed
        await asyncio.sleep(0.2)


async def decision_policy(gw: InProcessGateway, public_id: str) -> dict[str, Any]:
    response = await gw.client.get(f"/v1/inferences/{public_id}/decision",
                                   headers={"x-api-key": gw.key})
    assert response.status_code == 200, response.text
    body = response.json()
    policy: dict[str, Any] = body["policy"]
    # Said plainly beside the policy too, with what the client asked for.
    assert body["preference_live"] is policy["preference_live"]
    assert body["requested_preference"] == "quality"
    return policy


@pytest.mark.parametrize(("surface", "initial"), [("messages", False), ("chat", True)])
async def test_a_flip_on_the_ledger_reaches_a_running_gateway(
        world: World, surface: str, initial: bool) -> None:
    async with serve_world(world, routing_preference_live=initial) as gw:
        # The environment's value is in force until an operator sets the gate.
        before_id, before = await quality_call(gw, surface)
        assert before["policy"]["preference_live"] is initial
        shown = ainfera(world, "router", "preference-live",
                        env={"AINFERA_ROUTING_PREFERENCE_LIVE": "1" if initial else "0"})
        assert (shown["preference_live"], shown["source"]) == (initial, "environment")

        flipped = ainfera(world, "router", "preference-live", "off" if initial else "on",
                          "--actor", "alice@ops")
        assert flipped["preference_live"] is not initial
        assert (flipped["source"], flipped["set_by"]) == ("ledger", "alice@ops")

        after_id, after = await until_gate(gw, surface, not initial)
        assert after["policy"]["preference_live"] is not initial
        # The same request now routes under the other gate: the floor moves, or stops moving.
        floors = {True: "0.6", False: "0.5"}
        assert before["policy"]["min_quality"] == floors[initial]
        assert after["policy"]["min_quality"] == floors[not initial]
        assert after["chosen_model"] == ("fake-cheap" if initial else "fake-gpt")
        assert {before["requested_preference"], after["requested_preference"]} == {"quality"}
        # The decision endpoint says which state each call saw.
        assert (await decision_policy(gw, before_id))["preference_live"] is initial
        assert (await decision_policy(gw, after_id))["preference_live"] is not initial

    # Once set on the ledger, the environment no longer decides, even after a restart.
    async with serve_world(world, routing_preference_live=initial) as gw:
        _, restarted = await quality_call(gw, surface)
        assert restarted["policy"]["preference_live"] is not initial


def test_the_setting_is_a_ledger_event_naming_who_and_when(world: World) -> None:
    first = ainfera(world, "router", "preference-live", "on", "--actor", "alice@ops")
    second = ainfera(world, "router", "preference-live", "off", "--actor", "bob@ops")
    assert ainfera(world, "router", "preference-live") == {**second, "source": "ledger"}
    events = world.store.events_of(router_settings_id())
    assert [type(e).__name__ for e in events] == [
        "RouterSettingsCreated", "PreferenceLiveSet", "PreferenceLiveSet"]
    sets: list[Any] = events[1:]
    assert [(e.live, e.actor) for e in sets] == [(True, "alice@ops"), (False, "bob@ops")]
    assert [e.timestamp.isoformat() for e in sets] == [first["set_at"], second["set_at"]]
    assert all(e.tenant_id == "" and e.request_id.startswith("admin_") for e in events)
    # The ledger sequences the new event kind like any other, and verifies.
    proc = subprocess.run([AINFERA, "verify"], capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ,
                                            "AINFERA_DATABASE_URL": world.database_url,
                                            "AINFERA_SIGNING_KEY_FILE": str(
                                                world.config.parent / "signing.key")})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("maybe",), "invalid choice"),
    (("on", "--actor", " padded"), "invalid actor"),
])
def test_a_bad_gate_command_is_one_line_and_records_nothing(
        world: World, args: tuple[str, ...], message: str) -> None:
    proc = subprocess.run([AINFERA, "router", "preference-live", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "AINFERA_DATABASE_URL": world.database_url})
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not world.store.exists(router_settings_id())
