"""Reading and writing the ledger's tables: leaves (`ledger_entries`), stored subtree roots
(`ledger_nodes`) and signed checkpoints (`ledger_checkpoints`), over one `Session`.

Every reader here relies on one fact: rows below the tree size never change (the sequencer
only appends), so a tree head or a proof read piecewise outside a snapshot is still the tree
of that size. Hashes are stored as lowercase hex (migration 0001) and handed out as bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from domain.hashchain import GENESIS
from domain.merkle_tree import CompactRange, NodeKey, SubtreeCache, frontier_keys
from projections.view import Session

MIN_LEVEL: Final = 8
"""Subtree roots at or above this level are stored; below it, rehashing <= 255 leaves is
cheaper than a row per node (domain.merkle_tree.SubtreeCache)."""

LAST_ENTRY = "SELECT leaf_index, chain_hash FROM ledger_entries ORDER BY leaf_index DESC LIMIT 1"
LEAVES = (
    "SELECT leaf_hash FROM ledger_entries WHERE leaf_index >= %s AND leaf_index < %s "
    "ORDER BY leaf_index"
)
CHAIN_AT = "SELECT chain_hash FROM ledger_entries WHERE leaf_index = %s"
NODE = "SELECT hash FROM ledger_nodes WHERE level = %s AND node_index = %s"
# Multi-row inserts of the sequencer's leaves and subtree roots (Session.execute_values), and
# their one-row forms.
INSERT_ENTRIES = (
    "INSERT INTO ledger_entries (leaf_index, notification_id, aggregate_id, version, event_type, "
    "tenant_id, leaf_hash, chain_hash, event_json) VALUES {values}"
)
INSERT_NODES = "INSERT INTO ledger_nodes (level, node_index, hash) VALUES {values}"
INSERT_ENTRY = INSERT_ENTRIES.replace("{values}", "(%s, %s, %s, %s, %s, %s, %s, %s, %s)")
INSERT_NODE = INSERT_NODES.replace("{values}", "(%s, %s, %s)")
ENTRIES_OF = (
    "SELECT leaf_index, event_json, leaf_hash, chain_hash FROM ledger_entries "
    "WHERE aggregate_id = %s ORDER BY version"
)
ALL_ENTRIES = (
    "SELECT leaf_index, notification_id, aggregate_id, version, event_type, tenant_id, "
    "leaf_hash, chain_hash, event_json FROM ledger_entries "
    "WHERE leaf_index >= %s ORDER BY leaf_index LIMIT %s"
)
ALL_NODES = "SELECT level, node_index, hash FROM ledger_nodes ORDER BY level, node_index"
LATEST_CHECKPOINT = (
    "SELECT tree_size, root_hash, note FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1"
)
CHECKPOINT_AT = "SELECT tree_size, root_hash, note FROM ledger_checkpoints WHERE tree_size = %s"
ALL_CHECKPOINTS = "SELECT tree_size, root_hash, note FROM ledger_checkpoints ORDER BY tree_size"
INSERT_CHECKPOINT = (
    "INSERT INTO ledger_checkpoints (tree_size, root_hash, note, signed_at) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (tree_size) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str


@dataclass(frozen=True, slots=True)
class StoredEntry:
    leaf_index: int
    event_json: str | None
    leaf_hash: bytes
    chain_hash: bytes


class NodeTable(MutableMapping[NodeKey, bytes]):
    """`ledger_nodes` as the store of a read-only SubtreeCache: reads go to the table,
    writes stay in this object (only the sequencer writes the table, inside its batch).
    Iterating shows only what this object has read or been given."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._memo: dict[NodeKey, bytes] = {}

    def __getitem__(self, key: NodeKey) -> bytes:
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        rows = self._session.execute(NODE, key)
        if not rows:
            raise KeyError(key)
        node = bytes.fromhex(rows[0][0])
        self._memo[key] = node
        return node

    def __setitem__(self, key: NodeKey, value: bytes) -> None:
        self._memo[key] = value

    def __delitem__(self, key: NodeKey) -> None:
        del self._memo[key]

    def __iter__(self) -> Iterator[NodeKey]:
        return iter(self._memo)

    def __len__(self) -> int:
        return len(self._memo)


class LedgerTables:
    """The ledger's rows as one session sees them."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def head(self) -> tuple[int, bytes]:
        """(tree size, chain hash of the last leaf); (0, GENESIS) for an empty ledger."""
        rows = self.session.execute(LAST_ENTRY)
        if not rows:
            return 0, GENESIS
        return int(rows[0][0]) + 1, bytes.fromhex(rows[0][1])

    def leaves(self, start: int, end: int) -> list[bytes]:
        return [bytes.fromhex(r[0]) for r in self.session.execute(LEAVES, (start, end))]

    def tree(self) -> SubtreeCache:
        """MTH of any range of existing leaves, from stored leaves and subtree roots."""
        return SubtreeCache(self.leaves, NodeTable(self.session), min_level=MIN_LEVEL)

    def compact_range(self, size: int) -> CompactRange:
        """The tree's right edge at `size`, to resume appending from."""
        tree = self.tree()
        return CompactRange(size, [tree.complete(level, i) for level, i in frontier_keys(size)])

    def chain_before(self, leaf_index: int) -> bytes:
        """prev_chain_hash of a leaf: the chain hash of the one before, GENESIS for leaf 0."""
        if leaf_index == 0:
            return GENESIS
        rows = self.session.execute(CHAIN_AT, (leaf_index - 1,))
        if not rows:
            raise MissingLeafError(f"leaf {leaf_index - 1} is not in the ledger")
        return bytes.fromhex(rows[0][0])

    def entries_of(self, aggregate_id: str) -> list[StoredEntry]:
        return [
            StoredEntry(int(r[0]), r[1], bytes.fromhex(r[2]), bytes.fromhex(r[3]))
            for r in self.session.execute(ENTRIES_OF, (aggregate_id,))
        ]

    def rows(self, start: int, limit: int) -> list[tuple[Any, ...]]:
        """Raw ledger_entries rows from `start`, for verification."""
        return self.session.execute(ALL_ENTRIES, (start, limit))

    def nodes(self) -> list[tuple[Any, ...]]:
        return self.session.execute(ALL_NODES)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        rows = self.session.execute(LATEST_CHECKPOINT)
        return _checkpoint(rows[0]) if rows else None

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        rows = self.session.execute(CHECKPOINT_AT, (size,))
        return _checkpoint(rows[0]) if rows else None

    def checkpoints(self) -> list[StoredCheckpoint]:
        return [_checkpoint(r) for r in self.session.execute(ALL_CHECKPOINTS)]

    def add_checkpoint(self, checkpoint: StoredCheckpoint, signed_at: str) -> None:
        self.session.execute(
            INSERT_CHECKPOINT,
            (checkpoint.size, checkpoint.root.hex(), checkpoint.note, signed_at),
        )


def _checkpoint(row: tuple[Any, ...]) -> StoredCheckpoint:
    return StoredCheckpoint(int(row[0]), bytes.fromhex(row[1]), row[2])


class MissingLeafError(LookupError):
    """A leaf the ledger should hold is not there (the table was emptied or edited)."""
