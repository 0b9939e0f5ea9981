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

The leaves are computed (canonical JSON, hashes: most of the projector's CPU) in `prepare`,
before the batch's transaction, from the cached edge, so the transaction (on SQLite, the
database's one write lock) is not held meanwhile. They are used only when the table still ends
where they start and the batch is the one they were computed for; otherwise they are computed
again inside the transaction.

Only one sequence of leaves can ever exist per store. The projector holds this projection's
position lock for the whole batch, so a second sequencer waits and then finds the events
applied. Past that, the leaf index is the primary key and the notification id and (aggregate,
version) are unique, so a replayed event fails its insert and the batch rolls back instead of
forking the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from domain.hashchain import chain_hash
from domain.merkle_tree import CompactRange
from projections.fold import ReadModel, Sequenced
from projections.ledger_event import canonical_leaf
from projections.ledger_tables import INSERT_ENTRIES, INSERT_NODES, MIN_LEVEL, LedgerTables
from projections.view import Session

Head = tuple[CompactRange, bytes]  # the tree's right edge and the chain hash of its last leaf


@dataclass(frozen=True, slots=True)
class _Leaves:
    """A batch's rows, computed from the head they extend; `after` is the head they make."""

    start: tuple[int, bytes]
    notification_ids: tuple[int, ...]
    entries: list[tuple[Any, ...]]
    nodes: list[tuple[Any, ...]]
    after: Head


class LedgerEntries(ReadModel):
    name = "ledger_entries"
    # ledger_checkpoints is not here: signed checkpoints are statements already given to the
    # world, so a rebuild keeps them and `ainfera verify` checks the rebuilt tree against them.
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "ledger_entries": ("leaf_index",),
        "ledger_nodes": ("level", "node_index"),
    }

    def __init__(self) -> None:
        # The head as of the last committed batch (None = unknown, read it from the table).
        self._head: Head | None = None
        self._pending: Head | None = None
        self._prepared: _Leaves | None = None

    def prepare(self, batch: Sequence[Sequenced]) -> None:
        self._prepared = _leaves(self._head, batch) if self._head is not None else None

    def apply(self, session: Session, batch: Sequence[Sequenced]) -> None:
        self._pending = None
        head = self._current_head(session)
        leaves, self._prepared = self._prepared, None
        if (leaves is None or leaves.start != (head[0].size, head[1])
                or leaves.notification_ids != tuple(i.notification_id for i in batch)):
            leaves = _leaves(head, batch)
        session.execute_values(INSERT_ENTRIES, leaves.entries)
        session.execute_values(INSERT_NODES, leaves.nodes)
        self._pending = leaves.after

    def committed(self) -> None:
        self._head, self._pending = self._pending, None

    def _current_head(self, session: Session) -> Head:
        """The cached head, reloaded from the table unless the table still ends there."""
        tables = LedgerTables(session)
        size, chain = tables.head()
        if self._head is None or self._head[0].size != size or self._head[1] != chain:
            self._head = (tables.compact_range(size), chain)
        return self._head


def _leaves(head: Head, batch: Sequence[Sequenced]) -> _Leaves:
    """The rows of `batch` appended at `head` (which is left as it was)."""
    edge, chain = CompactRange(head[0].size, head[0].frontier), head[1]
    entries: list[tuple[Any, ...]] = []
    nodes: list[tuple[Any, ...]] = []
    for item in batch:
        obj, text, leaf = canonical_leaf(item.event, edge.size, aggregate_id=item.key,
                                         recorded_at=item.recorded_at)
        chain = chain_hash(chain, leaf)
        entries.append((obj["leaf_index"], item.notification_id, obj["aggregate_id"],
                        obj["version"], obj["type"], obj["tenant_id"] or "", leaf.hex(),
                        chain.hex(), text))
        nodes += [(level, index, node.hex()) for (level, index), node in edge.append(leaf)
                  if level >= MIN_LEVEL]
    return _Leaves((head[0].size, head[1]), tuple(i.notification_id for i in batch), entries,
                   nodes, (edge, chain))
