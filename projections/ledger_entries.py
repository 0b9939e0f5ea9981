"""ledger_entries: the sequencer that turns the application sequence into the ledger's leaves.

One leaf per stored event, in application-sequence order, with dense leaf indexes 0, 1, 2...
(notification ids have gaps, so they are kept beside the index, never used as one). Each leaf
row holds the event object's canonical JSON, its leaf hash and its chain hash; the Merkle
subtree roots the leaf completes (level >= 8) go to `ledger_nodes`; and the tracking position
moves in the same transaction, so a crash never leaves a leaf without its nodes or position.

It is the projector's one sequential stage: leaf n needs leaf n-1's chain hash and the tree's
right edge. Both are cached between batches, but only trusted after checking them against the
table's last leaf (index and chain hash, which commits to every earlier leaf) at the start of
each batch; when the table moved (another projector, a rolled-back batch, a rebuild) the edge
is reloaded from it. Then the batch's leaves and nodes go in as multi-row inserts.

Only one sequence of leaves can ever exist per store. The projector holds this projection's
position lock for the whole batch, so a second sequencer waits and then finds the events
applied. Past that, the leaf index is the primary key and the notification id and (aggregate,
version) are unique, so a replayed event fails its insert and the batch rolls back instead of
forking the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from domain.hashchain import chain_hash
from domain.merkle_tree import CompactRange
from projections.fold import ReadModel, Sequenced
from projections.ledger_event import canonical_leaf
from projections.ledger_tables import INSERT_ENTRIES, INSERT_NODES, MIN_LEVEL, LedgerTables
from projections.view import Session


class LedgerEntries(ReadModel):
    name = "ledger_entries"
    # ledger_checkpoints is not here: signed checkpoints are statements already given to the
    # world, so a rebuild keeps them and `ainfera verify` checks the rebuilt tree against them.
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "ledger_entries": ("leaf_index",),
        "ledger_nodes": ("level", "node_index"),
    }

    def __init__(self) -> None:
        # (edge, chain hash of its last leaf) as of the last committed batch; None = unknown.
        self._head: tuple[CompactRange, bytes] | None = None
        self._pending: tuple[CompactRange, bytes] | None = None

    def apply(self, session: Session, batch: Sequence[Sequenced]) -> None:
        self._pending = None
        edge, chain = self._edge(session)
        entries: list[tuple[Any, ...]] = []
        nodes: list[tuple[Any, ...]] = []
        for item in batch:
            obj, text, leaf = canonical_leaf(item.event, edge.size)
            chain = chain_hash(chain, leaf)
            entries.append((obj["leaf_index"], item.notification_id, obj["aggregate_id"],
                            obj["version"], obj["type"], obj["tenant_id"] or "", leaf.hex(),
                            chain.hex(), text))
            nodes += [(level, index, node.hex()) for (level, index), node in edge.append(leaf)
                      if level >= MIN_LEVEL]
        session.execute_values(INSERT_ENTRIES, entries)
        session.execute_values(INSERT_NODES, nodes)
        self._pending = (edge, chain)

    def committed(self) -> None:
        self._head, self._pending = self._pending, None

    def _edge(self, session: Session) -> tuple[CompactRange, bytes]:
        """A copy of the tree edge and chain hash where the table ends now."""
        tables = LedgerTables(session)
        size, chain = tables.head()
        if self._head is None or self._head[0].size != size or self._head[1] != chain:
            self._head = (tables.compact_range(size), chain)
        edge, chain = self._head
        return CompactRange(edge.size, edge.frontier), chain
