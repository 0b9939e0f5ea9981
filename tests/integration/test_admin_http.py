"""The tenant-admin API over HTTP on both backends: an admin key onboards an agent (create, cap,
key, revoke) for its own tenant only; every change is a ledger event naming the admin key and
shows in the audit trail with its leaf; scopes are enforced both ways (agent key on an admin
route 403, admin key on an inference route 403); another tenant's ids are 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.store import EventStore
from app.factory import create_app
from app.services import tenancy
from app.settings import Settings
from tests.mixed_run import Run, mixed_run

CONSISTENT = {"x-ainfera-consistent": "true"}


@dataclass
class World:
    client: AsyncTestClient  # type: ignore[type-arg]
    run: Run
    store: EventStore
    admin_key: str
    admin_key_id: str
    other_admin_key: str

    def admin(self) -> dict[str, str]:
        return {"x-api-key": self.admin_key}

    def agent(self) -> dict[str, str]:
        return {"x-api-key": self.run.key_a}


@pytest.fixture
async def world(database_url: str, admin_store: EventStore, tmp_path: Any) -> AsyncIterator[World]:
    run = mixed_run(admin_store)
    admin = tenancy.create_key(admin_store, "acme", None, admin=True)
    other = tenancy.create_key(admin_store, "globex", None, admin=True)
    app = create_app(Settings(database_url=database_url,
                              signing_key_file=str(tmp_path / "signing.key")))
    async with AsyncTestClient(app=app) as client:
        yield World(client, run, admin_store, admin.key, str(admin.key_id), other.key)


async def test_an_admin_onboards_an_agent_without_a_shell(world: World) -> None:
    c = world.client
    created = await c.post("/v1/admin/agents", headers=world.admin(),
                           json={"name": "support-bot", "daily_cap_usd": "2.50"})
    assert created.status_code == 201, created.text
    agent = created.json()
    assert (agent["name"], agent["daily_cap_usd"]) == ("support-bot", "2.50")
    assert agent["position"] > 0
    capped = await c.put(f"/v1/admin/agents/{agent['id']}/cap", headers=world.admin(),
                         json={"daily_cap_usd": "1.00"})
    assert capped.status_code == 200, capped.text
    assert capped.json()["daily_cap_usd"] == "1.00"
    issued = await c.post("/v1/admin/keys", headers=world.admin(), json={"agent": "support-bot"})
    assert issued.status_code == 201, issued.text
    key = issued.json()
    assert key["key"].startswith("ak_")
    assert key["hint"] == key["key"][:7]
    assert (key["scope"], key["agent_id"]) == ("agent", agent["id"])

    # The new key speaks for the new agent, and the agent is listed with its cap.
    me = await c.get("/v1/me", headers={"x-api-key": key["key"]})
    assert me.status_code == 200
    assert me.json()["agent"] == {"id": agent["id"], "name": "support-bot",
                                  "daily_cap_usd": "1.00"}
    assert me.json()["scope"] == "agent"
    listed = await c.get("/v1/admin/agents", headers=world.admin())
    assert listed.status_code == 200
    rows = {a["name"]: a for a in listed.json()["data"]}
    assert set(rows) == {"default", "bot", "support-bot"}
    # Read-model amounts render without trailing zeros (domain.money.from_nanos).
    assert rows["support-bot"]["daily_cap_usd"] == "1"
    assert rows["support-bot"]["active_keys"] == 1
    assert rows["bot"]["calls_today"] == 5
    assert rows["bot"]["spend_today_usd"] == "0.0023"
    assert rows["bot"]["metrics_24h"]["calls"] == 5

    # Lifting the cap, then revoking the key: the key stops working.
    lifted = await c.put("/v1/admin/agents/support-bot/cap", headers=world.admin(),
                         json={"daily_cap_usd": None})
    assert lifted.json()["daily_cap_usd"] is None
    keys = await c.get("/v1/admin/keys?agent=support-bot", headers=world.admin())
    assert [k["id"] for k in keys.json()["data"]] == [key["id"]]
    assert "key" not in keys.json()["data"][0]
    assert keys.json()["data"][0]["created_by"] == {"kind": "admin_key",
                                                    "key_id": world.admin_key_id}
    revoked = await c.post(f"/v1/admin/keys/{key['id']}/revoke", headers=world.admin())
    assert revoked.status_code == 200, revoked.text
    again = await c.post(f"/v1/admin/keys/{key['id']}/revoke", headers=world.admin())
    assert again.status_code == 409
    await _eventually_refused(c, key["key"])

    # Every change is on the ledger, naming the admin key, newest first.
    audit = await c.get("/v1/admin/audit", headers=world.admin())
    assert audit.status_code == 200
    mine = [e for e in audit.json()["data"] if e["by"]["kind"] == "admin_key"]
    assert [e["type"] for e in mine] == ["KeyRevoked", "SpendPolicySet", "KeyIssued",
                                         "SpendPolicySet", "AgentRegistered"]
    assert all(e["event"]["admin_key_id"] == world.admin_key_id for e in mine)
    assert all(e["event"]["leaf_index"] == e["leaf_index"] for e in mine)
    assert mine[1]["summary"] == "lifted the daily cap of agent 'support-bot'"
    assert mine[3]["summary"] == "set the daily cap of agent 'support-bot' to $1.00"
    # The CLI's own changes (mixed_run) are the operator's.
    cli = [e for e in audit.json()["data"] if e["by"] == {"kind": "operator"}]
    assert "TenantCreated" in [e["type"] for e in cli]
    assert all(e["event"]["tenant_id"] == str(world.run.tenant_a)
               for e in audit.json()["data"])


async def _eventually_refused(client: Any, key: str) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + 10  # the auth cache keeps an answer for 1 s
    while True:
        response = await client.get("/v1/me", headers={"x-api-key": key})
        if response.status_code == 401 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert response.status_code == 401


async def test_scopes_are_enforced_both_ways(world: World) -> None:
    c = world.client
    for method, path, body in (("GET", "/v1/admin/agents", None),
                               ("POST", "/v1/admin/agents", {"name": "sneaky"}),
                               ("PUT", f"/v1/admin/agents/{world.run.bot_a}/cap",
                                {"daily_cap_usd": None}),
                               ("GET", "/v1/admin/keys", None),
                               ("GET", "/v1/admin/audit", None)):
        response = await c.request(method, path, headers=world.agent(), json=body)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["type"] == "permission_error"
        assert "tenant-admin key" in response.json()["error"]["message"]
    call = await c.post("/v1/messages", headers={**world.admin(),
                                                 "anthropic-version": "2023-06-01"},
                        json={"model": "ainfera-inference", "max_tokens": 5,
                              "messages": [{"role": "user", "content": "hi"}]})
    assert call.status_code == 403
    assert "cannot make inference calls" in call.json()["error"]["message"]
    chat = await c.post("/v1/chat/completions", headers={
        "authorization": f"Bearer {world.admin_key}"},
        json={"model": "ainfera-inference", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 403
    assert chat.json()["error"]["code"] == "permission_denied"
    # No inference was recorded for either refusal.
    listed = await c.get("/v1/inferences?limit=200", headers={**world.admin(), **CONSISTENT})
    assert len(listed.json()["data"]) == 6
    # The admin key reads everything of its tenant.
    usage = await c.get("/v1/usage/daily?days=1", headers=world.admin())
    assert usage.json()["totals"]["calls"] == 6
    me = await c.get("/v1/me", headers=world.admin())
    assert me.json()["scope"] == "admin"
    assert me.json()["agent"] is None
    assert me.json()["tenant"]["name"] == "acme"


async def test_another_tenants_ids_are_404_and_bad_input_is_400(world: World) -> None:
    c = world.client
    other = {"x-api-key": world.other_admin_key}
    bot = str(world.run.bot_a)
    assert (await c.put(f"/v1/admin/agents/{bot}/cap", headers=other,
                        json={"daily_cap_usd": None})).status_code == 404
    assert (await c.put("/v1/admin/agents/bot/cap", headers=other,
                        json={"daily_cap_usd": None})).status_code == 404
    assert (await c.post("/v1/admin/keys", headers=other, json={"agent": bot})).status_code == 404
    issued = await c.post("/v1/admin/keys", headers=world.admin(), json={"agent": "bot"})
    key_id = issued.json()["id"]
    assert (await c.post(f"/v1/admin/keys/{key_id}/revoke", headers=other)).status_code == 404
    assert (await c.post("/v1/admin/keys/nonsense/revoke", headers=other)).status_code == 404
    own_admin = await c.post(f"/v1/admin/keys/{world.admin_key_id}/revoke",
                             headers=world.admin())
    assert own_admin.status_code == 403
    other_keys = await c.get("/v1/admin/keys", headers=other)
    assert key_id not in [k["id"] for k in other_keys.json()["data"]]
    dup = await c.post("/v1/admin/agents", headers=world.admin(), json={"name": "bot"})
    assert dup.status_code == 409
    assert "already has an agent 'bot'" in dup.json()["error"]["message"]
    for body in ({"name": " padded"}, {"name": "x", "daily_cap_usd": "-1"},
                 {"name": "x", "daily_cap_usd": "lots"}, {"name": "x", "daily_cap_usd": 5},
                 {"name": "x", "extra": 1}, {}):
        bad = await c.post("/v1/admin/agents", headers=world.admin(), json=body)
        assert bad.status_code == 400, (body, bad.text)
        assert bad.json()["type"] == "error"
        assert bad.json()["error"]["type"] == "invalid_request_error"
    missing = await c.put(f"/v1/admin/agents/{bot}/cap", headers=world.admin(), json={})
    assert missing.status_code == 400
    assert (await c.get("/v1/admin/audit?limit=0", headers=world.admin())).status_code == 400
    # Nothing was recorded by a refused change.
    names = [a["name"] for a in (await c.get("/v1/admin/agents",
                                             headers=world.admin())).json()["data"]]
    assert names == ["default", "bot"]


async def test_ledger_checkpoints_are_listed_newest_first(world: World) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + 20
    while True:
        response = await world.client.get("/v1/ledger/checkpoints?limit=2")
        body = response.json()
        if body.get("checkpoints") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert response.status_code == 200
    latest = (await world.client.get("/v1/ledger/checkpoint")).text
    first = body["checkpoints"][0]
    assert first["note"] == latest
    assert latest.splitlines()[1] == str(first["tree_size"])
    assert latest.splitlines()[2] == first["root_hash"]
    assert first["signed_at"].endswith("Z")
    assert (await world.client.get("/v1/ledger/checkpoints?limit=0")).status_code == 400


async def test_admin_changes_are_on_the_ledger_and_ainfera_verify_checks_them(
        world: World, database_url: str, tmp_path: Any) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    c = world.client
    created = await c.post("/v1/admin/agents", headers=world.admin(),
                           json={"name": "audited", "daily_cap_usd": "3.00"})
    changed = await c.put("/v1/admin/agents/audited/cap", headers=world.admin(),
                          json={"daily_cap_usd": "4.00"})
    assert created.status_code == 201
    assert changed.status_code == 200
    audit = (await c.get("/v1/admin/audit?limit=2", headers=world.admin())).json()["data"]
    leaf = audit[0]["leaf_index"]
    assert audit[0]["event"]["daily_cap_usd"] == "4.00"
    # Wait for a signed checkpoint covering the change, so verify checks its signature too.
    import asyncio
    import time

    deadline = time.monotonic() + 20
    while True:
        response = await c.get("/v1/ledger/checkpoint")
        if response.status_code == 200 and int(response.text.splitlines()[1]) > leaf:
            break
        assert time.monotonic() < deadline, "no checkpoint covers the change"
        await asyncio.sleep(0.2)
    env = {**os.environ, "AINFERA_DATABASE_URL": database_url,
           "AINFERA_SIGNING_KEY_FILE": str(tmp_path / "signing.key")}
    ainfera = str(Path(sys.executable).with_name("ainfera"))

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([ainfera, "verify", "--json"], capture_output=True, text=True,
                              env=env, timeout=120, check=False)

    clean = verify()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["ok"] is True
    # Editing who made the change, in the ledger's copy of the event, is caught.
    from adapters.database import Database
    from projections.view import Session

    database = Database.from_url(database_url)
    conn = database.connect()
    try:
        session = Session(conn, database.kind)
        session.begin(write=True)
        forged = json.dumps({**audit[0]["event"], "admin_key_id": None}, sort_keys=True,
                            separators=(",", ":"))
        session.execute("UPDATE ledger_entries SET event_json = %s WHERE leaf_index = %s",
                        (forged, leaf))
        conn.commit()
    finally:
        conn.close()
    tampered = verify()
    assert tampered.returncode == 1
    assert f"leaf {leaf}" in tampered.stdout + tampered.stderr
