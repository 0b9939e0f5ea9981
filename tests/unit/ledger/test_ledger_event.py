"""The sequencer's event objects: the same RFC 8785 bytes the offline verifier computes, for
every event kind, and a refusal (never a rounding) for values JSON cannot hold exactly."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from adapters.jcs import CanonicalJsonError, jcs, leaf_hash_of_event
from domain.context import audit_context
from domain.inference import Inference
from domain.tenancy import Agent, ApiKey, Tenant
from projections.ledger_event import LedgerEventError, canonical_leaf, event_object


def every_kind_of_event() -> list[Any]:
    with audit_context(str(uuid4()), str(uuid4()), "req-1"):
        tenant = Tenant(name="acme")
        agent = Agent(owner_tenant_id=tenant.id, name="bot", daily_cap_usd=Decimal("5.00"))
        agent.set_spend_policy(Decimal("1E+1"))
        key = ApiKey(key_hash="ab" * 32, owner_tenant_id=tenant.id, bound_agent_id=agent.id,
                     hint="ak_x")
        key.revoke()
        inference = Inference(
            api="messages", requested_model="ainfera-inference", router="ainfera-inference",
            alias_hit=None, candidates=[{"model": "m", "quality": "0.9", "eligible": True}],
            chosen_model="m", policy={"min_quality": "0.5"}, ruleset_hash="h", stream=True,
            tools=1, request_digest="d")
        inference.dispatch("p", "m-up", None, {"type": "overloaded", "status": 529,
                                                "retryable": True})
        inference.dispatch("p", "m-up", "up-1", None)
        inference.record_stream(ttft_ms=10, chunks=3, bytes=99)
        inference.complete("succeeded", "end_turn", {"input_tokens": 1, "output_tokens": 2,
                                                     "cache_read": None, "cache_write": 0},
                           50, "sha256:00")
        inference.debit(Decimal("0.000001"), "v1", None)
    aggregates: list[Any] = [tenant, agent, key, inference]
    return [e for a in aggregates for e in a.collect_events()]


def test_every_event_kind_canonicalises_as_the_verifier_does() -> None:
    events = every_kind_of_event()
    assert [type(e).__name__ for e in events] == [
        "TenantCreated", "AgentRegistered", "SpendPolicySet", "KeyIssued", "KeyRevoked",
        "Routed", "Dispatched", "Dispatched", "Streamed", "Completed", "Debited"]
    for index, event in enumerate(events):
        obj, text, leaf = canonical_leaf(event, index)
        assert text.encode() == jcs(obj)
        assert leaf == leaf_hash_of_event(json.loads(text))
        assert obj["leaf_index"] == index
        assert obj["version"] == event.originator_version
        assert obj["aggregate_id"] == str(event.originator_id)
        assert obj["request_id"] == "req-1"
    agent_registered = event_object(events[1], 1)
    assert agent_registered["daily_cap_usd"] == "5.00"
    assert agent_registered["owner_tenant_id"] == str(events[0].originator_id)
    assert event_object(events[2], 2)["daily_cap_usd"] == "10"  # no exponent form


@pytest.mark.parametrize(("value", "message"), [
    (1.5, "float"),
    (2**53, "beyond 2\\*\\*53"),
    (Decimal("NaN"), "not a finite amount"),
    ({1: "x"}, "non-string key"),
    (b"raw", "bytes"),
])
def test_values_json_cannot_hold_exactly_are_refused(value: object, message: str) -> None:
    with audit_context("t", None, "r"):
        inference = Inference(
            api="messages", requested_model="m", router="direct", alias_hit=None,
            candidates=[{"model": "m", "x": value}], chosen_model="m", policy={},
            ruleset_hash="h", stream=False, tools=0, request_digest="d")
    (routed,) = inference.collect_events()
    with pytest.raises(LedgerEventError, match=message):
        canonical_leaf(routed, 0)


def test_the_verifier_refuses_floats_too() -> None:
    with pytest.raises(CanonicalJsonError, match="float"):
        leaf_hash_of_event({"leaf_index": 0, "cost_usd": 0.1})
