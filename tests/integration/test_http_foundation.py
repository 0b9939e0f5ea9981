"""The HTTP edge on both backends: health, readiness, auth in both header styles, tenant
isolation, revocation, and errors in the caller's protocol shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from adapters.store import EventStore
from app.factory import create_app
from app.services import tenancy
from app.settings import Settings
from domain.context import audit_context
from domain.ids import public_inference_id
from domain.inference import Inference


@dataclass
class World:
    client: AsyncTestClient  # type: ignore[type-arg]
    key_a: str
    key_b: str
    inference_a: str
    store: EventStore


@pytest.fixture
async def world(database_url: str, admin_store: EventStore,
                tmp_path: Path) -> AsyncIterator[World]:
    tenant_a = tenancy.create_tenant(admin_store, "tenant-a")
    tenancy.create_tenant(admin_store, "tenant-b")
    key_a = tenancy.create_key(admin_store, "tenant-a", None).key
    key_b = tenancy.create_key(admin_store, "tenant-b", None).key
    with audit_context(str(tenant_a), None, "req-test"):
        inference = Inference(
            api="messages", requested_model="m", router="direct", alias_hit=None,
            candidates=[], chosen_model="m", policy={}, ruleset_hash="h", stream=False,
            tools=0, request_digest="d",
        )
    admin_store.save_events(inference.collect_events())
    app = create_app(Settings(database_url=database_url,
                              signing_key_file=str(tmp_path / "signing.key")))
    async with AsyncTestClient(app=app) as client:
        yield World(client, key_a, key_b, public_inference_id(inference.id, "messages"),
                    admin_store)


async def test_health_and_readiness(world: World) -> None:
    health = await world.client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await world.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "projector": "ok", "checkpointer": "ok",
                                      "counters": "ok"}
    assert ready.json()["failing"] == []
    assert ready.headers["request-id"].startswith("req_")


async def test_both_auth_header_styles_reach_the_own_tenant(world: World) -> None:
    path = f"/v1/inferences/{world.inference_a}"
    by_header = await world.client.get(path, headers={"x-api-key": world.key_a})
    by_bearer = await world.client.get(path, headers={"authorization": f"Bearer {world.key_a}"})
    assert by_header.status_code == by_bearer.status_code == 200
    body = by_header.json()
    assert body["id"] == world.inference_a
    assert [e["type"] for e in body["events"]] == ["Routed"]
    assert body["events"][0]["request_id"] == "req-test"


async def test_another_tenants_inference_is_not_found(world: World) -> None:
    response = await world.client.get(
        f"/v1/inferences/{world.inference_a}", headers={"x-api-key": world.key_b}
    )
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


async def test_missing_unknown_and_revoked_keys_answer_401(world: World) -> None:
    path = f"/v1/inferences/{world.inference_a}"
    missing = await world.client.get(path)
    assert missing.status_code == 401
    body = missing.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert body["request_id"] == missing.headers["request-id"]
    unknown = await world.client.get(path, headers={"x-api-key": "ak_not-a-real-key"})
    assert unknown.status_code == 401
    assert (await world.client.get(path, headers={"x-api-key": world.key_a})).status_code == 200
    tenancy.revoke_key(world.store, world.key_a)
    # A checked key is trusted for the auth cache's TTL (1 s by default), then refused.
    await asyncio.sleep(1.1)
    revoked = await world.client.get(path, headers={"x-api-key": world.key_a})
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["error"]["message"]


async def test_errors_take_the_openai_shape_on_openai_paths(world: World) -> None:
    response = await world.client.post("/v1/chat/nothing-here", json={})
    assert response.status_code == 404
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    anthropic = await world.client.get("/v1/nothing-here")
    assert anthropic.status_code == 404
    assert anthropic.json()["type"] == "error"


async def test_malformed_inference_ids_are_not_found(world: World) -> None:
    response = await world.client.get("/v1/inferences/not-an-id",
                                      headers={"x-api-key": world.key_b})
    assert response.status_code == 404


async def test_openapi_is_served(world: World) -> None:
    response = await world.client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "/v1/inferences/{inference_id}" in response.json()["paths"]
