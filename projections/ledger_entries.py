"""ledger_entries: the sequencer that turns the application sequence into the ledger's leaves.

One leaf per stored event, in application-sequence order, with dense leaf indexes 0, 1, 2...
(notification ids have gaps, so they are kept beside the index, never used as one). Each leaf
row holds the event object's canonical JSON, its leaf hash and its chain hash; the Merkle
subtree roots the leaf completes (level >= 8) go to `ledger_nodes`; and the tracking position
moves in the same transaction, so a crash never leaves a leaf without its nodes or position.

Only one sequence of leaves can ever exist per store. The runner holds this projection's
position lock for a whole batch, so a second sequencer (another gateway, `ainfera project`)
waits and then finds the events applied. Past that, the leaf index is the primary key and the
notification id is unique, so a replayed event fails its insert and the batch rolls back
instead of forking the log. The in-memory tree edge is only a cache: every append is guarded,
in the INSERT itself, by the previous leaf's (index, chain hash), which commits to every
earlier leaf, and by the absence of its own index. When the guard fails (another runner, a
rolled-back batch or a rebuild moved the table), the edge is reloaded from the table and the
append retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking

from domain.hashchain import chain_hash
from domain.merkle_tree import CompactRange
from projections.ledger_event import canonical_leaf
from projections.ledger_tables import (
    APPEND_AFTER,
    APPEND_FIRST,
    INSERT_NODE,
    MIN_LEVEL,
    LedgerTables,
)
from projections.view import Session, SqlProjection, SqlView

log = logging.getLogger("ainfera.ledger")


class LedgerEntries(SqlProjection):
    name = "ledger_entries"
    # ledger_checkpoints is not here: signed checkpoints are statements already given to the
    # world, so a rebuild keeps them and `ainfera verify` checks the rebuilt tree against them.
    tables: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "ledger_entries": ("leaf_index",),
        "ledger_nodes": ("level", "node_index"),
    }

    def __init__(self, view: SqlView) -> None:
        super().__init__(view)
        self._edge: CompactRange | None = None
        self._chain = b""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        with self.view.transaction() as session:
            try:
                edge, leaf = self._append(session, domain_event, tracking)
                # The edge and chain move only once the row is in; if anything after this
                # fails, the batch rolls back and the next append's guard finds the cache ahead.
                for (level, index), node in edge.append(leaf):
                    if level >= MIN_LEVEL:
                        session.execute(INSERT_NODE, (level, index, node.hex()))
                self.view.track(tracking)
            except BaseException:
                self._edge = None  # whatever the table holds now, read it before trusting it
                raise

    def _append(self, session: Session, event: Any,
                tracking: Tracking) -> tuple[CompactRange, bytes]:
        """Inserts the event's leaf where the ledger ends; returns the edge to extend."""
        for _ in range(2):
            edge = self._edge if self._edge is not None else self._reload(session)
            leaf_index = edge.size
            obj, text, leaf = canonical_leaf(event, leaf_index)
            link = chain_hash(self._chain, leaf)
            row = (leaf_index, tracking.notification_id, obj["aggregate_id"], obj["version"],
                   obj["type"], obj["tenant_id"] or "", leaf.hex(), link.hex(), text)
            if leaf_index == 0:
                inserted = session.execute(APPEND_FIRST, row)
            else:
                inserted = session.execute(APPEND_AFTER, (*row, leaf_index - 1,
                                                          self._chain.hex(), leaf_index))
            if inserted:
                self._chain = link
                return edge, leaf
            log.info("ledger_entries: the table moved under this sequencer's cached edge "
                     "(at %d leaves); reloading it", leaf_index)
            self._edge = None
        raise SequencerError(f"could not append notification {tracking.notification_id}: the "
                             "ledger changed while it was being read")

    def _reload(self, session: Session) -> CompactRange:
        tables = LedgerTables(session)
        size, self._chain = tables.head()
        self._edge = tables.compact_range(size)
        return self._edge


class SequencerError(RuntimeError):
    """The sequencer could not place a leaf; its batch rolls back and is retried."""
