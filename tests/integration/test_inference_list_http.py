"""`GET /v1/inferences` on both backends: the stable response shape with public ids, every
filter, cursor pagination that neither skips nor repeats, agent keys confined to their own
agent, another tenant's nothing, and bad queries a clear 400. Also the usage splits the
console's chart reads (`/v1/usage/daily?by=agent|outcome&agent=`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.store import EventStore
from app.factory import create_app
from app.services import tenancy
from app.settings import Settings
from domain.ids import public_inference_id
from tests.mixed_run import Run, mixed_run

CONSISTENT = {"x-ainfera-consistent": "true"}


@dataclass
class World:
    client: AsyncTestClient  # type: ignore[type-arg]
    run: Run
    admin_key: str

    async def get(self, path: str, key: str | None = None) -> Any:
        response = await self.client.get(path, headers={"x-api-key": key or self.admin_key,
                                                        **CONSISTENT})
        return response

    async def ids(self, query: str = "", key: str | None = None) -> list[str]:
        response = await self.get(f"/v1/inferences{query}", key)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()["data"]]

    def public(self, name: str) -> str:
        api = "chat.completions" if name == "fallback" else "messages"
        return public_inference_id(self.run.ids[name], api)


@pytest.fixture
async def world(database_url: str, admin_store: EventStore, tmp_path: Any) -> AsyncIterator[World]:
    run = mixed_run(admin_store)
    admin = tenancy.create_key(admin_store, "acme", None, admin=True)
    app = create_app(Settings(database_url=database_url,
                              signing_key_file=str(tmp_path / "signing.key")))
    async with AsyncTestClient(app=app) as client:
        yield World(client, run, admin.key)


NEWEST_FIRST = ["direct", "cancelled", "failed", "rejected", "fallback", "routed"]


async def test_the_list_shape_newest_first_with_public_ids(world: World) -> None:
    response = await world.get("/v1/inferences")
    body = response.json()
    assert (body["object"], body["has_more"], body["next_cursor"]) == ("list", False, None)
    assert [r["id"] for r in body["data"]] == [world.public(n) for n in NEWEST_FIRST]
    fallback = body["data"][4]
    assert fallback["id"].startswith("chatcmpl-")
    assert {k: fallback[k] for k in ("object", "api", "agent_id", "agent_name", "router",
                                     "requested_model", "chosen_model", "alias_hit", "status",
                                     "latency_ms", "cost_usd")} == {
        "object": "inference", "api": "chat.completions", "agent_id": str(world.run.bot_a),
        "agent_name": "bot", "router": "ainfera-inference", "requested_model": "ainfera-auto",
        "chosen_model": "gpt-5-mini", "alias_hit": "ainfera-auto",
        "status": "fallback_succeeded", "latency_ms": 300, "cost_usd": "0.0008"}
    assert fallback["created_at"].endswith("Z")
    assert fallback["completed_at"].endswith("Z")
    rejected = body["data"][3]
    assert (rejected["chosen_model"], rejected["cost_usd"]) == (None, None)
    # The other tenant's call is never listed.
    assert world.public("other_tenant") not in [r["id"] for r in body["data"]]


async def test_every_filter(world: World) -> None:
    p = world.public
    assert await world.ids("?agent=bot") == [p(n) for n in NEWEST_FIRST[1:]]
    assert await world.ids(f"?agent={world.run.agent_a}") == [p("direct")]
    assert await world.ids("?status=failed,cancelled") == [p("cancelled"), p("failed")]
    assert await world.ids("?status=in_flight") == []
    assert await world.ids("?router=direct") == [p("direct")]
    assert await world.ids("?model=claude-haiku-4-5") == [p("direct")]
    assert await world.ids("?model=ainfera-auto") == [p("fallback")]
    assert await world.ids("?router=ainfera-inference&model=gpt-5-mini&status=succeeded") == [
        p("routed")]
    today = datetime.now(UTC).date()
    assert len(await world.ids(f"?since={today.isoformat()}")) == 6
    assert await world.ids(f"?until={today.isoformat()}") == []
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert await world.ids(f"?since={tomorrow}") == []
    assert len(await world.ids(f"?until={tomorrow}T00:00:00%2B00:00")) == 6


async def test_cursor_pages_neither_skip_nor_repeat(world: World) -> None:
    seen: list[str] = []
    query = "?limit=4"
    pages = 0
    while True:
        body = (await world.get(f"/v1/inferences{query}")).json()
        seen += [r["id"] for r in body["data"]]
        pages += 1
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        query = f"?limit=4&cursor={body['next_cursor']}"
    assert pages == 2
    assert seen == [world.public(n) for n in NEWEST_FIRST]
    # Filters keep applying across pages.
    first = (await world.get("/v1/inferences?agent=bot&limit=2")).json()
    rest = (await world.get(f"/v1/inferences?agent=bot&limit=10&cursor={first['next_cursor']}"
                            )).json()
    assert [r["id"] for r in first["data"] + rest["data"]] == [
        world.public(n) for n in NEWEST_FIRST[1:]]


async def test_an_agent_key_sees_only_its_own_agent(world: World) -> None:
    bot_key = world.run.key_a
    assert await world.ids("", bot_key) == [world.public(n) for n in NEWEST_FIRST[1:]]
    assert await world.ids("?agent=bot", bot_key) == [world.public(n) for n in NEWEST_FIRST[1:]]
    other_agent = await world.get("/v1/inferences?agent=default", bot_key)
    assert other_agent.status_code == 404
    stranger = await world.get(f"/v1/inferences?agent={world.run.bot_a}", world.run.key_b)
    assert stranger.status_code == 404
    assert await world.ids("", world.run.key_b) == [world.public("other_tenant")]


@pytest.mark.parametrize(("query", "param"), [
    ("status=done", "status"), ("status=", "status"), ("router=auto", "router"),
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"),
    ("since=yesterday", "since"), ("until=2026-11-29T10:00:00", "until"),
    ("cursor=bm9wZQ", "cursor"), ("cursor=%%%", "cursor"),
])
async def test_bad_queries_are_a_clear_400(world: World, query: str, param: str) -> None:
    response = await world.get(f"/v1/inferences?{query}")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert param in error["message"]


async def test_usage_split_by_agent_and_by_outcome(world: World) -> None:
    run = world.run
    by_agent = (await world.get("/v1/usage/daily?days=2&by=agent&fill=zero")).json()
    today = by_agent["days"][-1]
    assert today["by_agent"] == {
        str(run.agent_a): {"calls": 1, "cost_usd": "0.0001",
                           "by_status": {"ok": 1, "fallback": 0, "error": 0}},
        str(run.bot_a): {"calls": 5, "cost_usd": "0.0023",
                         "by_status": {"ok": 2, "fallback": 1, "error": 3}},
    }
    assert by_agent["days"][0]["by_agent"] == {}
    by_outcome = (await world.get("/v1/usage/daily?days=2&by=outcome&fill=zero")).json()
    outcome = by_outcome["days"][-1]["by_outcome"]
    assert outcome == {
        "cancelled": {"calls": 1, "cost_usd": "0.0003"},
        "failed": {"calls": 1, "cost_usd": "0"},
        "fallback_succeeded": {"calls": 1, "cost_usd": "0.0008"},
        "rejected_floor": {"calls": 1, "cost_usd": "0"},
        "succeeded": {"calls": 2, "cost_usd": "0.0013"},
    }
    # The splits add up to the day's totals, exactly.
    day = by_outcome["days"][-1]
    assert sum(v["calls"] for v in outcome.values()) == day["calls"] == 6
    assert sum(Decimal(v["cost_usd"]) for v in outcome.values()) == Decimal(day["cost_usd"])
    one = (await world.get("/v1/usage/daily?days=1&agent=default")).json()
    assert one["totals"] == {"calls": 1, "cost_usd": "0.0001",
                             "by_status": {"ok": 1, "fallback": 0, "error": 0}}
    assert (await world.get("/v1/usage/daily?by=model")).status_code == 400
    assert (await world.get("/v1/usage/daily?agent=ghost")).status_code == 404
    foreign = await world.get(f"/v1/usage/daily?agent={run.bot_a}", run.key_b)
    assert foreign.status_code == 404


async def test_the_caps_rollup_has_the_window_error_rate(world: World) -> None:
    body = (await world.get("/v1/caps/rollup")).json()
    # 6 calls in the window: failed, rejected_floor and cancelled are errors.
    assert (body["calls"], body["error_rate"]) == (6, 0.5)
