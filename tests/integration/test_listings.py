"""`ainfera tenant list`, `agent list` and `key list` as a user runs them, on both backends:
what was made can be found again, scoped to its tenant, and a key's secret never shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

AINFERA = str(Path(sys.executable).with_name("ainfera"))


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AINFERA_DATABASE_URL": database_url}
    return subprocess.run([AINFERA, *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def ok_json(database_url: str, *args: str) -> dict[str, Any]:
    proc = run(database_url, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    obj: dict[str, Any] = json.loads(proc.stdout)
    return obj


def test_tenants_agents_and_keys_are_listed_without_secrets(database_url: str) -> None:
    assert ok_json(database_url, "tenant", "list") == {"tenants": []}
    acme = ok_json(database_url, "tenant", "create", "acme")["tenant_id"]
    ok_json(database_url, "tenant", "create", "globex")
    bot = ok_json(database_url, "agent", "create", "--tenant", "acme", "--name", "bot",
                  "--daily-cap-usd", "5.00")["agent_id"]
    ok_json(database_url, "agent", "set-cap", "--tenant", "acme", "--agent", "bot",
            "--daily-cap-usd", "7.5")
    first = ok_json(database_url, "key", "create", "--tenant", "acme", "--agent", "bot")
    second = ok_json(database_url, "key", "create", "--tenant", "acme")
    other = ok_json(database_url, "key", "create", "--tenant", "globex")
    admin = ok_json(database_url, "key", "create", "--tenant", "acme", "--admin")
    ok_json(database_url, "key", "revoke", first["key_id"])

    tenants = ok_json(database_url, "tenant", "list")["tenants"]
    assert next((t["name"], t["tenant_id"]) for t in tenants) == ("acme", acme)
    assert [t["name"] for t in tenants] == ["acme", "globex"]
    assert all(t["created_at"].endswith("Z") for t in tenants)

    agents = ok_json(database_url, "agent", "list", "--tenant", "acme")["agents"]
    assert [(a["name"], a["daily_cap_usd"]) for a in agents] == [("default", None),
                                                                 ("bot", "7.5")]
    assert agents[1]["agent_id"] == bot
    assert [a["name"] for a in ok_json(database_url, "agent", "list", "--tenant",
                                       acme)["agents"]] == ["default", "bot"]

    keys = ok_json(database_url, "key", "list", "--tenant", "acme")["keys"]
    assert [k["key_id"] for k in keys] == [first["key_id"], second["key_id"], admin["key_id"]]
    assert [(k["agent"], k["scope"], k["revoked"]) for k in keys] == [
        ("bot", "agent", True), ("default", "agent", False), (None, "admin", False)]
    assert keys[0]["revoked_at"].endswith("Z")
    assert keys[1]["revoked_at"] is None
    assert keys[0]["prefix"] == first["key"][:7]
    text = run(database_url, "key", "list", "--tenant", "acme")
    assert text.returncode == 0
    for secret in (first["key"], second["key"], other["key"], admin["key"]):
        assert secret not in text.stdout
        assert secret[7:] not in json.dumps(keys)
    assert first["key_id"] in text.stdout
    assert "PREFIX" in text.stdout.splitlines()[0]
    assert other["key_id"] not in text.stdout  # globex's key is not acme's

    missing = run(database_url, "agent", "list", "--tenant", "ghost")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "ainfera: error: no tenant named or with id 'ghost'"
