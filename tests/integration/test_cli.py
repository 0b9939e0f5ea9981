"""The `ainfera` CLI as a user runs it: a subprocess, one JSON object with --json, and a
one-line error (never a traceback) for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AINFERA = str(Path(sys.executable).with_name("ainfera"))


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AINFERA_DATABASE_URL": database_url}
    return subprocess.run([AINFERA, *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def one_json(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


def test_admin_commands_print_one_json_object(database_url: str) -> None:
    assert "applied" in one_json(run(database_url, "migrate", "--json"))
    tenant = one_json(run(database_url, "tenant", "create", "acme", "--json"))
    agent = one_json(run(database_url, "agent", "create", "--tenant", "acme", "--name", "bot",
                         "--daily-cap-usd", "5.00", "--json"))
    by_id = one_json(run(database_url, "key", "create", "--tenant", str(tenant["tenant_id"]),
                         "--agent", "bot", "--json"))
    assert by_id["tenant_id"] == tenant["tenant_id"]
    assert by_id["agent_id"] == agent["agent_id"]
    assert str(by_id["key"]).startswith("ak_")
    default = one_json(run(database_url, "key", "create", "--tenant", "acme", "--json"))
    assert default["agent_id"] != agent["agent_id"]
    revoked = one_json(run(database_url, "key", "revoke", str(by_id["key"]), "--json"))
    assert revoked == {"key_id": by_id["key_id"], "revoked": True}
    by_key_id = one_json(run(database_url, "key", "revoke", str(default["key_id"]), "--json"))
    assert by_key_id["revoked"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tenant", "create", " spaced"), "invalid name"),
        (("agent", "create", "--tenant", "ghost", "--name", "bot"), "no tenant"),
        (("agent", "create", "--tenant", "acme", "--name", "b", "--daily-cap-usd", "1e999x"),
         "not an amount"),
        (("agent", "create", "--tenant", "acme", "--name", "b", "--daily-cap-usd", "-3"),
         "non-negative"),
        (("key", "create", "--tenant", "acme", "--agent", "ghost"), "no agent"),
        (("key", "revoke", "garbage"), "neither a key"),
        (("key", "revoke", "ak_unknown"), "no such key"),
        (("tenant", "create", "acme"), "already exists"),
        (("tenant",), "required"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_input_is_one_line(database_url: str, args: tuple[str, ...], message: str) -> None:
    assert run(database_url, "tenant", "create", "acme").returncode == 0
    proc = run(database_url, *args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr


def test_a_bad_database_url_is_one_line() -> None:
    proc = run("mysql://nope", "migrate")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "ainfera: error: unsupported database URL 'mysql': use sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DB"
    ]


def test_json_errors_are_one_object_too(database_url: str) -> None:
    proc = run(database_url, "agent", "create", "--tenant", "ghost", "--name", "b", "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {"error": "no tenant named or with id 'ghost'"}


def test_agent_set_cap_records_a_policy_change(database_url: str) -> None:
    from decimal import Decimal
    from uuid import UUID

    from adapters.database import Database
    from adapters.store import EventStore
    from domain.tenancy import Agent

    assert run(database_url, "tenant", "create", "acme").returncode == 0
    created = one_json(run(database_url, "agent", "create", "--tenant", "acme", "--name", "bot",
                           "--json"))
    changed = one_json(run(database_url, "agent", "set-cap", "--tenant", "acme", "--agent",
                           "bot", "--daily-cap-usd", "12.50", "--json"))
    assert changed == {"agent_id": created["agent_id"], "daily_cap_usd": "12.50"}
    lifted = one_json(run(database_url, "agent", "set-cap", "--tenant", "acme", "--agent",
                          str(created["agent_id"]), "--no-cap", "--json"))
    assert lifted["daily_cap_usd"] is None
    store = EventStore(Database.from_url(database_url))
    try:
        agent_id = UUID(str(created["agent_id"]))
        assert store.get(agent_id, Agent).daily_cap_usd is None
        assert [type(e).__name__ for e in store.events_of(agent_id)] == [
            "AgentRegistered", "SpendPolicySet", "SpendPolicySet"]
        assert store.events_of(agent_id)[1].daily_cap_usd == Decimal("12.50")  # type: ignore[attr-defined]
    finally:
        store.close()
    for args, message in (
        (("--agent", "bot"), "one of the arguments"),
        (("--agent", "bot", "--daily-cap-usd", "-1"), "non-negative"),
        (("--agent", "ghost", "--no-cap"), "no agent"),
    ):
        proc = run(database_url, "agent", "set-cap", "--tenant", "acme", *args)
        assert proc.returncode != 0
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert message in proc.stderr


def test_key_create_admin_makes_a_tenant_admin_key(database_url: str) -> None:
    one_json(run(database_url, "tenant", "create", "acme", "--json"))
    admin = one_json(run(database_url, "key", "create", "--tenant", "acme", "--admin",
                         "--json"))
    assert (admin["scope"], admin["agent_id"]) == ("admin", None)
    agent = one_json(run(database_url, "key", "create", "--tenant", "acme", "--json"))
    assert agent["scope"] == "agent"
    assert agent["agent_id"] is not None
    both = run(database_url, "key", "create", "--tenant", "acme", "--admin", "--agent", "x")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    text = run(database_url, "key", "create", "--tenant", "acme", "--admin")
    assert text.returncode == 0
    assert "tenant-admin key id" in text.stdout
