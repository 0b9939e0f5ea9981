"""The dashboard over HTTP on both backends, served by the app's own in-process projector:
tenant scoping (another tenant's ids are 404), zeros for an empty tenant, consistent reads,
the self-description documents and /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.store import EventStore
from app.factory import create_app
from app.services import tenancy
from app.settings import Settings
from domain.catalog import LEGACY_ALIASES
from domain.ids import public_inference_id
from domain.routing import ROUTER
from tests.mixed_run import CANDIDATES, Run, mixed_run

CONSISTENT = {"x-ainfera-consistent": "true"}


@dataclass
class World:
    client: AsyncTestClient  # type: ignore[type-arg]
    run: Run
    store: EventStore
    key_empty: str

    def a(self) -> dict[str, str]:
        return {"x-api-key": self.run.key_a, **CONSISTENT}

    def b(self) -> dict[str, str]:
        return {"x-api-key": self.run.key_b, **CONSISTENT}


@pytest.fixture
async def world(database_url: str, admin_store: EventStore,
                tmp_path: Path) -> AsyncIterator[World]:
    run = mixed_run(admin_store)
    tenancy.create_tenant(admin_store, "empty")
    key_empty = tenancy.create_key(admin_store, "empty", None).key
    app = create_app(Settings(database_url=database_url,
                              signing_key_file=str(tmp_path / "signing.key")))
    async with AsyncTestClient(app=app) as client:
        yield World(client, run, admin_store, key_empty)


TODAY_A = {"calls": 6, "cost_usd": "0.0024", "by_status": {"ok": 3, "fallback": 1, "error": 3}}
ZERO_TOTALS = {"calls": 0, "cost_usd": "0", "by_status": {"ok": 0, "fallback": 0, "error": 0}}


async def test_usage_daily_lists_the_days_with_calls(world: World) -> None:
    response = await world.client.get("/v1/usage/daily?days=30", headers=world.a())
    assert response.status_code == 200
    body = response.json()
    today = datetime.now(UTC).date().isoformat()
    assert body["days"] == [{"date": today, **TODAY_A}]
    assert body["totals"] == TODAY_A


async def test_usage_daily_fill_zero_counts_every_day_of_the_window(world: World) -> None:
    response = await world.client.get("/v1/usage/daily?days=30&fill=zero", headers=world.a())
    assert response.status_code == 200
    body = response.json()
    assert len(body["days"]) == 30
    today = datetime.now(UTC).date().isoformat()
    assert body["days"][-1] == {"date": today, **TODAY_A}
    assert all(d["calls"] == 0 and d["cost_usd"] == "0" for d in body["days"][:-1])
    assert body["totals"] == TODAY_A


async def test_an_empty_tenant_gets_no_days_and_zero_totals(world: World) -> None:
    headers = {"x-api-key": world.key_empty, **CONSISTENT}
    for path in ("/v1/usage/daily", "/v1/usage/daily?days=7"):
        usage = await world.client.get(path, headers=headers)
        assert usage.status_code == 200
        assert usage.json() == {"days": [], "totals": ZERO_TOTALS}
    filled = await world.client.get("/v1/usage/daily?days=7&fill=zero", headers=headers)
    assert filled.status_code == 200
    assert [d["calls"] for d in filled.json()["days"]] == [0] * 7
    assert filled.json()["totals"] == ZERO_TOTALS


@pytest.mark.parametrize("fill", ["", "zeros", "none", "1"])
async def test_an_unknown_fill_is_a_clear_400(world: World, fill: str) -> None:
    response = await world.client.get(f"/v1/usage/daily?fill={fill}", headers=world.a())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("fill must be 'zero'")


async def test_an_empty_tenant_gets_a_zero_rollup(world: World) -> None:
    headers = {"x-api-key": world.key_empty, **CONSISTENT}
    rollup = await world.client.get("/v1/caps/rollup", headers=headers)
    assert rollup.status_code == 200
    body = rollup.json()
    assert (body["agents"], body["policies_set"], body["budget"], body["latency_p50_ms"],
            body["breaches"]) == (1, 0, {"set": "0", "used_usd": "0", "counters": "ok",
                                         "settled_usd": "0", "reserved_usd": "0"}, None,
                                  {"quality": 0, "reliability": 0})


@pytest.mark.parametrize("days", ["0", "367", "abc", "-1", "1.5"])
async def test_days_out_of_range_is_a_clear_400(world: World, days: str) -> None:
    response = await world.client.get(f"/v1/usage/daily?days={days}", headers=world.a())
    assert response.status_code == 400
    assert "days must be a whole number from 1 to 366" in response.json()["error"]["message"]


async def test_caps_rollup(world: World) -> None:
    response = await world.client.get("/v1/caps/rollup?consistent=true",
                                      headers={"x-api-key": world.run.key_a})
    assert response.status_code == 200
    body = response.json()
    assert body["agents"] == 2
    assert body["policies_set"] == 1
    # The counters were rebuilt from the ledger at start: they agree with it, nothing held.
    # Amounts render without trailing zeros: one amount, one string (domain.money.from_nanos).
    assert body["budget"] == {"set": "7.5", "used_usd": "0.0023", "counters": "ok",
                              "settled_usd": "0.0023", "reserved_usd": "0"}
    # Routed calls only (routing_outcomes): 2, 50, 120, 300, 900 ms; not the 80 ms passthrough.
    assert body["latency_p50_ms"] == 120
    # quality: one routed call found no model above its floor; reliability: bot errs 3 in 5.
    assert body["breaches"] == {"quality": 1, "reliability": 1}


async def test_agent_metrics_and_another_tenants_agent_is_404(world: World) -> None:
    path = f"/v1/agents/{world.run.bot_a}/metrics"
    response = await world.client.get(path, headers=world.a())
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("calls", "cost_usd", "error_rate", "latency_p50_ms",
                                 "latency_p95_ms")} == {
        "calls": 5, "cost_usd": "0.0023", "error_rate": 0.6, "latency_p50_ms": 120,
        "latency_p95_ms": 900}
    assert (await world.client.get(path, headers=world.b())).status_code == 404
    unknown = await world.client.get("/v1/agents/not-a-uuid/metrics", headers=world.a())
    assert unknown.status_code == 404


async def test_decisions_routed_passthrough_and_another_tenants(world: World) -> None:
    ids = world.run.ids
    routed = await world.client.get(
        f"/v1/inferences/{public_inference_id(ids['routed'], 'messages')}/decision",
        headers={"x-api-key": world.run.key_a})
    assert routed.status_code == 200
    body = routed.json()
    assert (body["router"], body["alias_hit"], body["chosen"]) == (ROUTER, None, "gpt-5-mini")
    assert body["candidates"] == CANDIDATES
    assert [c["excluded"] for c in body["dashboard_candidates"]] == [
        "below_floor", None, "tools_unsupported", "ineligible", "below_floor"]
    assert body["policy"]["min_quality"] == "0.70"
    assert body["ruleset_hash"] == "sha256:" + "ab" * 32
    fallback = await world.client.get(
        f"/v1/inferences/{public_inference_id(ids['fallback'], 'chat.completions')}/decision",
        headers=world.a())
    assert fallback.json()["alias_hit"] == "ainfera-auto"
    direct = await world.client.get(f"/v1/inferences/{ids['direct']}/decision",
                                    headers=world.a())
    assert direct.status_code == 200
    assert (direct.json()["router"], direct.json()["candidates"],
            direct.json()["dashboard_candidates"]) == ("direct", [], [])
    stranger = await world.client.get(f"/v1/inferences/{ids['routed']}/decision",
                                      headers=world.b())
    assert stranger.status_code == 404
    nonsense = await world.client.get("/v1/inferences/msg_nothing/decision", headers=world.b())
    assert nonsense.status_code == 404


async def test_a_consistent_read_past_the_ledger_end_answers_503(world: World) -> None:
    end = world.store.max_notification_id()
    response = await world.client.get(
        "/v1/usage/daily", headers={"x-api-key": world.run.key_a,
                                    "x-ainfera-after": str(end + 1000)})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "behind" in response.json()["error"]["message"]


async def test_agent_card_and_llms_txt_name_the_router_and_no_legacy_alias(
        world: World) -> None:
    card = await world.client.get("/.well-known/agent-card.json")
    assert card.status_code == 200
    assert card.json()["default_model"] == "ainfera-inference"
    llms = await world.client.get("/llms.txt")
    assert llms.status_code == 200
    assert llms.headers["content-type"].startswith("text/plain")
    assert llms.text.startswith("# Ainfera Ledger")
    assert "Default model: `ainfera-inference`" in llms.text
    for text in (card.text, llms.text):
        for alias in LEGACY_ALIASES:
            assert alias not in text


async def test_metrics_export_lag_and_the_capture_invariant(world: World) -> None:
    names = ("routing_outcomes", "usage_daily", "agent_metrics", "decisions", "agents")
    deadline = time.monotonic() + 10
    while True:  # the in-process projector catches up on its own; lag must reach 0
        response = await world.client.get("/metrics")
        assert response.status_code == 200
        found = {(s.name, tuple(sorted(s.labels.items()))): s.value
                 for family in text_string_to_metric_families(response.text)
                 for s in family.samples}
        lags = {name: found.get(("ainfera_projection_lag_events", (("projection", name),)))
                for name in names}
        if set(lags.values()) == {0} or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert set(lags.values()) == {0}, lags
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert found[("dispatch_without_capture_total", ())] == 0
    end = world.store.max_notification_id()
    assert found[("ainfera_projection_position", (("projection", "decisions"),))] == end
    # This process runs the projector: its own state, read without the database.
    assert found[("ainfera_projector_position", ())] == end
    assert found[("ainfera_projector_lag_events", ())] == 0
    assert found[("ainfera_projector_failing", ())] == 0
    success = found[("ainfera_projector_last_success_timestamp_seconds", ())]
    assert abs(success - time.time()) < 60
