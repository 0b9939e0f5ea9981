"""The projector's rows are byte for byte what the reference computations give: every ledger
leaf (object text, leaf hash, chain hash, stored subtree roots) as `event_object` and
`canonical_bytes` make it from the stored event, whatever the batch boundaries; and every read
model the same whether a mixed run arrives in small batches (rows filled in by UPDATEs) or in
one (rows written whole). The read models' exact values are checked by test_projections."""

from __future__ import annotations

from typing import Any

from adapters.database import Database
from adapters.store import EventStore
from domain.hashchain import GENESIS, chain_hash
from domain.merkle import leaf_hash
from domain.merkle_tree import CompactRange
from projections.ledger_event import canonical_bytes, event_object
from projections.ledger_tables import MIN_LEVEL, LedgerTables
from projections.registry import build_projector, names
from projections.view import Session
from tests.mixed_run import dump_all, mixed_run


def project(database: Database, store: EventStore, batch_size: int, *,
            reset: bool = False) -> None:
    projector = build_projector(database.connect, database.kind, store, batch_size=batch_size)
    try:
        if reset:
            for name in names():
                projector.reset(name)
        projector.catch_up()
    finally:
        projector.close()


def test_leaves_and_rows_are_the_reference_bytes(database: Database,
                                                 store: EventStore) -> None:
    mixed_run(store)
    project(database, store, batch_size=3)  # calls span batches: rows filled in by UPDATEs
    small_batches = dump_all(database)

    notifications = store.notifications(1, 1_000_000)
    expected_entries: list[tuple[Any, ...]] = []
    expected_nodes: dict[tuple[int, int], str] = {}
    edge, chain = CompactRange(0, []), GENESIS
    for index, notification in enumerate(notifications):
        event: Any = store.decode(notification)
        obj = event_object(event, index)
        data = canonical_bytes(obj)
        leaf = leaf_hash(data)
        chain = chain_hash(chain, leaf)
        expected_entries.append((index, notification.id, str(event.originator_id),
                                 event.originator_version, type(event).__name__,
                                 obj["tenant_id"] or "", leaf.hex(), chain.hex(),
                                 data.decode("utf-8")))
        expected_nodes.update({key: node.hex() for key, node in edge.append(leaf)
                               if key[0] >= MIN_LEVEL})
    session = Session(database.connect(), database.kind)
    try:
        stored = LedgerTables(session).rows(0, 1_000_000)
    finally:
        session.close()
    assert [tuple(row) for row in stored] == expected_entries
    assert {(level, index): node for level, index, node in small_batches["ledger_nodes"]} \
        == expected_nodes

    project(database, store, batch_size=100_000, reset=True)
    assert dump_all(database) == small_batches
