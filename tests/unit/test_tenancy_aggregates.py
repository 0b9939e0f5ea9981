"""Tenancy rules: names, caps, key revocation, deterministic ids."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from domain.context import audit_context
from domain.ids import agent_id_for, hash_api_key, key_id_for, new_api_key, tenant_id_for
from domain.money import InvalidAmountError
from domain.tenancy import (
    Agent,
    ApiKey,
    InvalidNameError,
    InvalidScopeError,
    InvalidSpendPolicyError,
    KeyAlreadyRevokedError,
    Tenant,
    parse_cap,
)


def test_ids_derive_from_names_and_keys() -> None:
    with audit_context("t", None, "r"):
        tenant = Tenant(name="acme")
        agent = Agent(owner_tenant_id=tenant.id, name="bot", daily_cap_usd=None)
    assert tenant.id == tenant_id_for("acme")
    assert agent.id == agent_id_for(tenant.id, "bot")
    key = new_api_key()
    assert key.startswith("ak_")
    assert len(key) > 40
    assert hash_api_key(key) != key
    assert key_id_for(hash_api_key(key)) == key_id_for(hash_api_key(key))


@pytest.mark.parametrize("name", ["", " padded", "tab\there", "x" * 129])
def test_bad_names_are_refused(name: str) -> None:
    with audit_context("t", None, "r"), pytest.raises(InvalidNameError):
        Tenant(name=name)


def test_caps() -> None:
    assert parse_cap(None) is None
    assert parse_cap("2.50") == Decimal("2.50")
    with pytest.raises(InvalidSpendPolicyError):
        parse_cap("-1")
    with pytest.raises(InvalidAmountError):
        parse_cap("NaN")
    with pytest.raises(InvalidAmountError):
        parse_cap("lots")
    with audit_context("t", "a", "r"):
        agent = Agent(owner_tenant_id=tenant_id_for("x"), name="bot", daily_cap_usd=None)
        agent.set_spend_policy(Decimal("3"))
    assert [type(e).__name__ for e in agent.collect_events()] == [
        "AgentRegistered", "SpendPolicySet"]
    assert agent.daily_cap_usd == Decimal("3")


def test_a_key_is_revoked_once() -> None:
    with audit_context("t", "a", "r"):
        key = ApiKey(key_hash="h", owner_tenant_id=tenant_id_for("x"),
                     bound_agent_id=agent_id_for(tenant_id_for("x"), "bot"), hint="ak_abcd")
        key.revoke()
        with pytest.raises(KeyAlreadyRevokedError):
            key.revoke()
    assert key.revoked


def test_an_admin_key_is_bound_to_no_agent_and_an_agent_key_to_one() -> None:
    tenant_id = tenant_id_for("x")
    bot = agent_id_for(tenant_id, "bot")
    with audit_context(str(tenant_id), None, "r", admin_key_id="k-1"):
        admin = ApiKey(key_hash="a", owner_tenant_id=tenant_id, bound_agent_id=None,
                       hint="ak_abcd", scope="admin")
        agent = ApiKey(key_hash="b", owner_tenant_id=tenant_id, bound_agent_id=bot,
                       hint="ak_efgh")
        with pytest.raises(InvalidScopeError):
            ApiKey(key_hash="c", owner_tenant_id=tenant_id, bound_agent_id=bot, hint="h",
                   scope="admin")
        with pytest.raises(InvalidScopeError):
            ApiKey(key_hash="d", owner_tenant_id=tenant_id, bound_agent_id=None, hint="h")
        with pytest.raises(InvalidScopeError):
            ApiKey(key_hash="e", owner_tenant_id=tenant_id, bound_agent_id=None, hint="h",
                   scope="root")
    assert (admin.is_admin, admin.scope, agent.is_admin, agent.scope) == (
        True, "admin", False, "agent")
    # Who made the change rides on the event itself, so it is on the hash chain.
    issued = admin.collect_events()[0]
    assert (issued.admin_key_id, issued.scope) == ("k-1", "admin")  # type: ignore[attr-defined]


def test_a_key_issued_before_scopes_existed_loads_as_an_agent_key() -> None:
    """Stored KeyIssued events from before scopes have neither `scope` nor `admin_key_id`."""
    from eventsourcing.application import Application

    app: Application[Any] = Application()
    tenant_id = tenant_id_for("x")
    with audit_context(str(tenant_id), None, "r"):
        key = ApiKey(key_hash="f", owner_tenant_id=tenant_id,
                     bound_agent_id=agent_id_for(tenant_id, "bot"), hint="ak_old1")
    stored = app.mapper.to_stored_event(key.collect_events()[0])
    state = json.loads(stored.state)
    del state["scope"], state["admin_key_id"]
    old = replace(stored, state=json.dumps(state).encode())
    event = app.mapper.to_domain_event(old)
    loaded = event.mutate(None)
    assert isinstance(loaded, ApiKey)
    assert (loaded.scope, loaded.is_admin, loaded.revoked) == ("agent", False, False)
    # The old event's own fields are unchanged, so its ledger object (and leaf) are too.
    assert "scope" not in vars(event)
    assert "admin_key_id" not in vars(event)
    app.close()
