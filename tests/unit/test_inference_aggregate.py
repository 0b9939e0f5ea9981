"""The Inference aggregate's transition rules and audit stamping."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.context import MissingAuditContextError, audit_context
from domain.inference import Inference, InvalidTransitionError


def routed(**overrides: Any) -> Inference:
    fields: dict[str, Any] = {
        "api": "messages", "requested_model": "ainfera-inference", "router": "ainfera-inference",
        "alias_hit": None, "candidates": [], "chosen_model": "m", "policy": {},
        "ruleset_hash": "sha256:x", "stream": False, "tools": 0, "request_digest": "d",
    }
    fields.update(overrides)
    return Inference(**fields)


def test_every_event_carries_the_audit_ids() -> None:
    with audit_context("tenant-1", "agent-1", "req-1"):
        inference = routed()
        inference.dispatch("anthropic", "claude", "up-1", None)
        inference.record_stream(12, 3, 300)
        inference.complete("succeeded", "end_turn", {"input_tokens": 1, "output_tokens": 2},
                           40, "digest")
        inference.debit(Decimal("0.25"), "v1", "res-1")
    events = inference.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Routed", "Dispatched", "Streamed", "Completed", "Debited"]
    assert {(e.tenant_id, e.agent_id, e.request_id) for e in events} == {  # type: ignore[attr-defined]
        ("tenant-1", "agent-1", "req-1")}
    assert events[-1].cost_usd == "0.25"  # type: ignore[attr-defined]


def test_no_event_without_an_audit_context() -> None:
    with pytest.raises(MissingAuditContextError):
        routed()


def test_transitions_are_checked() -> None:
    with audit_context("t", "a", "r"):
        inference = routed()
        with pytest.raises(InvalidTransitionError, match="before Completed"):
            inference.debit(Decimal(1), "v1", None)
        inference.complete("failed", None, None, 5, None)
        with pytest.raises(InvalidTransitionError, match="already failed"):
            inference.complete("succeeded", None, None, 5, None)
        with pytest.raises(InvalidTransitionError, match="already failed"):
            inference.dispatch("p", "m", None, None)
        with pytest.raises(InvalidTransitionError, match="non-negative"):
            inference.debit(Decimal(-1), "v1", None)
        inference.debit(Decimal(0), "v1", None)
        with pytest.raises(InvalidTransitionError, match="already debited"):
            inference.debit(Decimal(1), "v1", None)


def test_bad_values_are_refused() -> None:
    with audit_context("t", "a", "r"):
        with pytest.raises(InvalidTransitionError, match="router"):
            routed(router="sideways")
        inference = routed()
        with pytest.raises(InvalidTransitionError, match="status"):
            inference.complete("done", None, None, None, None)
        inference.record_stream(None, 0, 0)
        with pytest.raises(InvalidTransitionError, match="already has a Streamed"):
            inference.record_stream(None, 0, 0)


def test_attempts_are_numbered() -> None:
    with audit_context("t", "a", "r"):
        inference = routed()
        inference.dispatch("p1", "m1", None, {"type": "timeout", "status": None, "retryable": True})
        inference.dispatch("p2", "m2", "up", None)
    events = inference.collect_events()
    assert [e.attempt for e in events[1:]] == [1, 2]  # type: ignore[attr-defined]


def test_declared_event_classes_keep_the_stored_topics() -> None:
    """Stores written before the events were declared as classes must still load: the topic
    each event is stored under is the contract, so it may not move."""
    from eventsourcing.utils import get_topic, resolve_topic

    from domain.tenancy import Agent

    for name in ("Routed", "Dispatched", "Streamed", "Completed", "Debited"):
        topic = f"domain.inference:Inference.{name}"
        assert get_topic(getattr(Inference, name)) == topic
        assert resolve_topic(topic) is getattr(Inference, name)
    for name in ("AgentRegistered", "SpendPolicySet"):
        assert get_topic(getattr(Agent, name)) == f"domain.tenancy:Agent.{name}"


def test_status_knows_what_counts_as_ok_and_fallback() -> None:
    from domain.inference import Status

    assert {s for s in Status if s.is_ok} == {Status.SUCCEEDED, Status.FALLBACK_SUCCEEDED}
    assert {s for s in Status if s.is_fallback} == {Status.FALLBACK_SUCCEEDED}
    assert all(s.is_error != s.is_ok for s in Status)
