"""Tenancy rules: names, caps, key revocation, deterministic ids."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.context import audit_context
from domain.ids import agent_id_for, hash_api_key, key_id_for, new_api_key, tenant_id_for
from domain.money import InvalidAmountError
from domain.tenancy import (
    Agent,
    ApiKey,
    InvalidNameError,
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
