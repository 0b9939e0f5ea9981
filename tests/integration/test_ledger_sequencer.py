"""The ledger_entries sequencer and the checkpointer on both backends: dense leaves in
application-sequence order, leaf and chain hashes a verifier recomputes, stored subtree roots,
resuming, rebuilding, competing sequencers that cannot fork the log, and checkpoints."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.jcs import leaf_hash_of_event
from adapters.signer import verify_note
from domain.context import audit_context
from domain.hashchain import GENESIS, chain_hash
from domain.inference import Inference
from domain.merkle import root_of
from domain.merkle_tree import CompactRange
from projections.checkpointer import Checkpointer, ForkError, sign_latest
from projections.fold import Sequenced
from projections.ledger_entries import LedgerEntries
from projections.ledger_event import LedgerEventError
from projections.ledger_tables import MIN_LEVEL, LedgerTables
from projections.ledger_verify import verify_ledger
from projections.projector import Projector
from projections.registry import build_projector
from tests.harness.ledger import ORIGIN, LedgerWorld, ledger_world


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[LedgerWorld]:
    with ledger_world(database_url, tmp_path) as w:
        yield w


def sequencer(world: LedgerWorld, **options: Any) -> Projector:
    db = world.database
    return build_projector(db.connect, db.kind, world.store, [LedgerEntries.name], **options)


def rows(world: LedgerWorld) -> list[tuple[Any, ...]]:
    session = world.session()
    try:
        return LedgerTables(session).rows(0, 1_000_000)
    finally:
        session.close()


def fill(world: LedgerWorld, inferences: int) -> None:
    for i in range(inferences):
        world.record(("streamed", "tool_use", "failed", "passthrough")[i % 4], "ab"[i % 2])


def check_ledger(world: LedgerWorld) -> list[bytes]:
    """Every row against an independent recomputation; returns the leaf hashes."""
    table = rows(world)
    assert world.store.max_notification_id() == table[-1][1]
    leaves, chain = [], GENESIS
    for expected_index, row in enumerate(table):
        index, _, aggregate, version, kind, tenant, leaf, link, text = row
        event = json.loads(text)
        assert index == expected_index == event["leaf_index"]
        assert (aggregate, version, kind, tenant) == (
            event["aggregate_id"], event["version"], event["type"], event["tenant_id"])
        assert leaf_hash_of_event(event).hex() == leaf
        assert hashlib.sha256(b"\0" + text.encode()).hexdigest() == leaf
        chain = chain_hash(chain, bytes.fromhex(leaf))
        assert chain.hex() == link
        leaves.append(bytes.fromhex(leaf))
    notifications = [r[1] for r in table]
    assert notifications == sorted(notifications)
    return leaves


def stored_nodes(world: LedgerWorld) -> dict[tuple[int, int], str]:
    session = world.session()
    try:
        return {(r[0], r[1]): r[2] for r in LedgerTables(session).nodes()}
    finally:
        session.close()


def test_leaves_chain_and_subtree_roots(world: LedgerWorld) -> None:
    fill(world, 60)  # past 256 leaves, so level-8 subtree roots exist
    world.sequence()
    leaves = check_ledger(world)
    assert len(leaves) > 1 << MIN_LEVEL
    edge, expected = CompactRange(), {}
    for leaf in leaves:
        for key, node in edge.append(leaf):
            if key[0] >= MIN_LEVEL:
                expected[key] = node.hex()
    assert stored_nodes(world) == expected
    session = world.session()
    try:
        assert LedgerTables(session).tree()(0, len(leaves)) == root_of(leaves)
    finally:
        session.close()


def test_event_objects_show_every_field_as_text_or_integer(world: LedgerWorld) -> None:
    by_type: dict[str, dict[str, Any]] = {}
    for row in rows(world):  # the first event of each type (the fixture's streamed call)
        by_type.setdefault(json.loads(row[8])["type"], json.loads(row[8]))
    assert {"TenantCreated", "AgentRegistered", "KeyIssued", "Routed", "Dispatched",
            "Streamed", "Completed", "Debited"} <= by_type.keys()
    debited = by_type["Debited"]
    assert debited["cost_usd"] == "0.000842"
    assert debited["recorded_at"].endswith("Z")
    assert len(debited["recorded_at"]) == len("2025-06-01T12:00:00.000000Z")
    assert by_type["AgentRegistered"]["owner_tenant_id"] == str(world.tenant_a)
    assert by_type["Routed"]["candidates"][0]["quality"] == "0.91"
    assert by_type["Completed"]["usage"] == {"input_tokens": 120, "output_tokens": 48,
                                             "cache_read": None, "cache_write": 0}


def test_sequencers_taking_turns_resume_from_the_table(world: LedgerWorld) -> None:
    """Two sequencers alternating: each finds the table moved under its cached tree edge and
    reloads it, and the leaves are what one sequencer alone would have written."""
    fill(world, 70)
    db = world.database
    first = sequencer(world, batch_size=37)
    second = sequencer(world, batch_size=41)
    try:
        while first.catch_up(max_events=37) + second.catch_up(max_events=41):
            pass
    finally:
        first.close()
        second.close()
    check_ledger(world)
    assert verify_ledger(world.store, db.connect, db.kind) == []


def test_concurrent_sequencers_never_fork(world: LedgerWorld) -> None:
    db = world.database
    initial = len(rows(world))
    runners = [sequencer(world, batch_size=7, poll_interval=0.01) for _ in range(3)]
    for runner in runners:
        runner.start()
    try:
        writers = [threading.Thread(target=fill, args=(world, 15)) for _ in range(2)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        target = world.store.max_notification_id()
        assert all(r.wait_for(target, timeout=30) for r in runners)
    finally:
        for runner in runners:
            runner.stop()
    check_ledger(world)
    # Every event applied exactly once, whichever runner got it.
    assert sum(r.state().applied_total for r in runners) == len(rows(world)) - initial
    assert verify_ledger(world.store, db.connect, db.kind) == []


def test_a_second_sequencer_replaying_applied_events_fails_cleanly(world: LedgerWorld) -> None:
    before = rows(world)
    stale = LedgerEntries()  # a sequencer that never saw the table: it appends at its end
    notification = world.store.notifications(1, 1)[0]
    event = world.store.decode(notification)
    session = world.session()
    try:
        session.begin(write=True)
        with pytest.raises(Exception, match=r"(?i)unique|already|duplicate"):
            stale.apply(session, [Sequenced(notification.id, event)])
        session.rollback()
    finally:
        session.close()
    assert rows(world) == before


def test_an_event_without_exact_json_stops_the_sequencer(world: LedgerWorld) -> None:
    before = rows(world)
    # A float sneaking into an event must never be rounded into a leaf.
    with audit_context(str(world.tenant_a), str(world.agent_a), "req-float"):
        inference = Inference(
            api="messages", requested_model="m", router="direct", alias_hit=None,
            candidates=[{"model": "m", "quality": 0.91}], chosen_model="m", policy={},
            ruleset_hash="h", stream=False, tools=0, request_digest="d")
    world.writer.save_blocking(inference)
    with pytest.raises(LedgerEventError, match="float"):
        world.sequence()
    assert rows(world) == before


def test_rebuild_writes_the_same_leaves(world: LedgerWorld) -> None:
    fill(world, 55)
    world.sequence()
    before, nodes = rows(world), stored_nodes(world)
    assert world.sequencer is not None
    # Rebuilt by another process: the world's sequencer has a stale position and a cached
    # tree edge that is now ahead of the emptied table.
    rebuilder = sequencer(world)
    rebuilder.reset(LedgerEntries.name)
    rebuilder.close()
    world.sequence()
    assert rows(world) == before
    assert stored_nodes(world) == nodes


def test_checkpoints_are_signed_while_the_tree_grows(world: LedgerWorld) -> None:
    db = world.database
    checkpointer = Checkpointer(db.connect, db.kind, world.signer, ORIGIN, interval=0.2)
    checkpointer.start()
    try:
        for _ in range(3):
            world.record("streamed")
            world.sequence()
            size = len(rows(world))
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline and _latest_size(world) < size:
                time.sleep(0.02)
            assert _latest_size(world) == size
    finally:
        checkpointer.stop()
    session = world.session()
    try:
        stored = LedgerTables(session).checkpoints()
    finally:
        session.close()
    assert len(stored) >= 3
    for checkpoint in stored:
        signed = verify_note(checkpoint.note, world.signer.vkey)
        assert (signed.origin, signed.size, signed.root) == (ORIGIN, checkpoint.size,
                                                             checkpoint.root)
    assert world.sign() is None  # nothing new to sign


def test_checkpointer_refuses_to_sign_a_fork(world: LedgerWorld) -> None:
    assert world.sign() is not None
    session = world.session()
    try:
        session.execute("UPDATE ledger_entries SET leaf_hash = %s WHERE leaf_index = 3",
                        ("00" * 32,))
    finally:
        session.close()
    world.record("failed")
    world.sequence()
    with pytest.raises(ForkError, match="refusing to sign"):
        world.sign()


def _latest_size(world: LedgerWorld) -> int:
    session = world.session()
    try:
        latest = LedgerTables(session).latest_checkpoint()
        return latest.size if latest else 0
    finally:
        session.close()


def test_sign_latest_on_an_empty_ledger_signs_nothing(world: LedgerWorld) -> None:
    assert world.sequencer is not None
    world.sequencer.reset(LedgerEntries.name)
    session = world.session()
    try:
        assert sign_latest(session, world.signer, ORIGIN) is None
    finally:
        session.close()
