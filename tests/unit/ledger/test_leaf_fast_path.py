"""`canonical_leaf` builds a leaf in one pass with the standard library's encoder when it can;
it must give exactly what the reference path gives (`event_object`, `canonical_bytes`, the leaf
hash): the same object, the same bytes, the same hash, and the same refusal with the same
message, for every event kind and for every odd value that sends it the reference way."""

from __future__ import annotations

import enum
from collections import OrderedDict
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.context import audit_context
from domain.inference import Inference
from domain.merkle import leaf_hash
from projections.fold import Sequenced
from projections.ledger_event import (
    LedgerEventError,
    canonical_bytes,
    canonical_leaf,
    event_object,
)
from projections.view import utc_text
from tests.unit.ledger.test_ledger_event import every_kind_of_event


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def reference(event: Any, leaf_index: int) -> tuple[dict[str, Any], str, bytes]:
    """What the sequencer wrote before the fast path: the object, then RFC 8785 of it."""
    obj = event_object(event, leaf_index)
    data = canonical_bytes(obj)
    return obj, data.decode("utf-8"), leaf_hash(data)


def outcome(build: Any) -> tuple[str, Any]:
    try:
        return "ok", build()
    except LedgerEventError as exc:
        return "refused", str(exc)


def routed_with(value: Any, key: str = "x") -> Any:
    with audit_context("t", "a", "r"):
        inference = Inference(
            api="messages", requested_model="m", router="direct", alias_hit=None,
            candidates=[{"model": "m", key: value}], chosen_model="m", policy={"p": value},
            ruleset_hash="h", stream=False, tools=0, request_digest="d")
    (routed,) = inference.collect_events()
    return routed


def test_every_event_kind_gives_the_reference_leaf() -> None:
    for index, event in enumerate(every_kind_of_event()):
        fast = canonical_leaf(event, index)
        assert fast == reference(event, index)
        item = Sequenced(index, event)
        shared = canonical_leaf(event, index, aggregate_id=item.key,
                                recorded_at=item.recorded_at)
        assert shared == fast


ODD_VALUES = [
    # Taken by the fast path.
    None, True, False, 0, -(2**53 - 1), 2**53 - 1, "", "plain", "é ü 中文 😀", "\u2028\x7f",
    "\x00\x1f\"\\", Decimal("0.000100"), Decimal("-1E+3"), Decimal("0E-9"),
    UUID("12345678-1234-5678-1234-567812345678"), [1, [2, [3]]], (1, "x"), {"a": {"b": None}},
    {"z": 1, "a": 2, "m": [{"k": "v"}]},
    # Sent the reference way (converted or refused there).
    2**53, -(2**53), 1.5, float("nan"), Decimal("NaN"), Decimal("Infinity"), b"raw",
    {1: "x"}, {"é": 1}, {"\U0001f600": 1, "\uff01": 2}, OrderedDict(a=1), Colour.RED,
    Level.HIGH, "\ud800", ["\ud800"], {"k": "\udfff"}, {"a": 1.0}, [Decimal("sNaN")],
    object(),
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_odd_values_give_the_reference_leaf_or_refusal(value: Any) -> None:
    for key in ("x", "é"):
        event = routed_with(value, key)
        for index in (0, 7, 2**53 - 1, 2**53):
            assert outcome(lambda e=event, i=index: canonical_leaf(e, i)) == outcome(
                lambda e=event, i=index: reference(e, i))


def test_odd_envelopes_give_the_reference_leaf_or_refusal() -> None:
    event = routed_with("v")
    state = vars(event)
    for version in (1, 2**53, True, 1.0, "1"):
        state["originator_version"] = version
        assert outcome(lambda: canonical_leaf(event, 3)) == outcome(lambda: reference(event, 3))
    state["originator_version"] = 1
    for extra in ({"leaf_index": 5}, {"type": "x"}, {"tenant_id": uuid4()},
                  {"agent_id": None, "request_id": Decimal("2")}, {"é": 1},
                  {"bad": 1.5, "version": 2}):
        changed = routed_with("v")
        vars(changed).update(extra)
        assert outcome(lambda e=changed: canonical_leaf(e, 3)) == outcome(
            lambda e=changed: reference(e, 3))


def test_sequenced_facts_are_what_the_models_computed_before() -> None:
    for index, event in enumerate(every_kind_of_event()):
        item = Sequenced(index, event)
        assert item.key == str(event.originator_id)
        assert item.recorded_at == utc_text(event.timestamp)
        assert item.key is item.key  # computed once, then shared
