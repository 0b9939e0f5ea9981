"""The ledger part of `ainfera verify`: recompute every leaf, chain link and subtree root from
the event store and hold the stored ledger and every signed checkpoint against them.

It catches an event row edited in the store (its recomputed leaf differs from the recorded
one, and the tree under every later checkpoint differs from what was signed), a ledger row
edited or dropped, a stored subtree root that is wrong, and a checkpoint whose note does not
verify, does not match its row, or signs a root the store's events do not give. Leaves the
sequencer has not reached yet are not problems: the store may run ahead of the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from domain.checkpoint import Checkpoint, CheckpointError, parse_checkpoint, parse_note
from domain.hashchain import GENESIS, chain_hash
from domain.merkle_tree import CompactRange
from projections.ledger_event import canonical_leaf
from projections.ledger_tables import MIN_LEVEL, LedgerTables, StoredCheckpoint
from projections.projector import NotificationSource
from projections.view import Connect, Session

OpenCheckpoint = Callable[[str], Checkpoint]
MAX_PROBLEMS = 20
_BATCH = 1000


def verify_ledger(source: NotificationSource, connect: Connect, kind: str,
                  open_checkpoint: OpenCheckpoint | None = None) -> list[str]:
    """Problems found, one line each (empty when the ledger is sound).

    Args:
        open_checkpoint: verifies a signed note with the log's key and returns its checkpoint
            (adapters.signer.verify_note bound to the vkey); without it notes are only parsed,
            so a forged signature goes unnoticed.
    """
    session = Session(connect(), kind)
    # Capped per kind, so a thousand leaves after an edit cannot hide the checkpoints it broke.
    leaves, nodes = _Problems("leaves"), _Problems("subtree nodes")
    signed = _Problems("checkpoints")
    try:
        session.begin(write=False)  # one snapshot of the ledger tables
        tables = LedgerTables(session)
        checkpoints = tables.checkpoints()
        replay = _replay(source, tables, checkpoints, leaves)
        _check_nodes(tables, replay, nodes)
        for checkpoint in checkpoints:
            _check_checkpoint(checkpoint, replay, open_checkpoint, signed)
        session.rollback()
    finally:
        session.close()
    return leaves.lines() + nodes.lines() + signed.lines()


class _Problems:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.found: list[str] = []
        self.more = 0

    def add(self, line: str) -> None:
        if len(self.found) < MAX_PROBLEMS:
            self.found.append(line)
        else:
            self.more += 1

    def lines(self) -> list[str]:
        more = [f"ledger: ... and {self.more} more problems with {self.kind}"]
        return self.found + (more if self.more else [])


class _Replay:
    """The tree rebuilt from the store, keeping the root at every size a checkpoint signed."""

    def __init__(self, sizes: set[int]) -> None:
        self.edge = CompactRange()
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.roots: dict[int, bytes] = {}
        self._sizes = sizes

    def append(self, leaf: bytes) -> None:
        for key, node in self.edge.append(leaf):
            if key[0] >= MIN_LEVEL:
                self.nodes[key] = node
        if self.edge.size in self._sizes:
            self.roots[self.edge.size] = self.edge.root()


def _replay(source: NotificationSource, tables: LedgerTables,
            checkpoints: list[StoredCheckpoint], problems: _Problems) -> _Replay:
    replay = _Replay({c.size for c in checkpoints})
    previous_link = GENESIS.hex()
    rows = _ledger_rows(tables)
    for leaf_index, notification in enumerate(_notifications(source)):
        columns: tuple[Any, ...]
        try:
            obj, text, leaf = canonical_leaf(source.decode(notification), leaf_index)
            columns = (obj["aggregate_id"], obj["version"], obj["type"], obj["tenant_id"] or "")
        except Exception as exc:  # an undecodable row is a finding, not a crash of verify
            problems.add(f"leaf {leaf_index}: event notification {notification.id} cannot be "
                         f"read from the store: {exc}")
            text, leaf, columns = "", b"\0" * 32, ()
        replay.append(leaf)
        row = next(rows, None)
        if row is None:
            continue  # the sequencer has not got here yet
        # Each link is checked against the ledger's own previous link, so one edited event is
        # one problem, not a cascade down the rest of the chain.
        _check_row(row, leaf_index, notification.id, text, leaf, previous_link, problems)
        if columns and tuple(row[2:6]) != columns:
            # Receipts find an inference's leaves by these columns.
            problems.add(f"leaf {leaf_index}: aggregate, version, type or tenant columns differ "
                         "from the event")
        previous_link = row[7]
    for row in rows:
        problems.add(f"leaf {row[0]}: on the ledger but the store has no event for it "
                     "(events were deleted from the store)")
    return replay


def _check_row(row: tuple[Any, ...], leaf_index: int, notification_id: int, text: str,
               leaf: bytes, previous_link: str, problems: _Problems) -> None:
    index, stored_notification, _, _, _, _, leaf_hex, chain_hex, event_json = row
    if index != leaf_index:
        problems.add(f"leaf {leaf_index}: the ledger's next row is leaf {index} "
                     "(leaf indexes must be dense)")
    elif stored_notification != notification_id:
        problems.add(f"leaf {leaf_index}: the ledger holds notification {stored_notification}, "
                     f"the store's event is notification {notification_id}")
    elif event_json is None:
        problems.add(f"leaf {leaf_index}: the ledger row has no event object")
    elif leaf_hex != leaf.hex() or event_json != text:
        what = "event object" if event_json != text else "leaf hash"
        problems.add(f"leaf {leaf_index}: the store's event (notification {notification_id}) "
                     f"does not give the ledger's {what}: the event or the ledger was edited")
    elif chain_hex != chain_hash(bytes.fromhex(previous_link), leaf).hex():
        problems.add(f"leaf {leaf_index}: chain hash is not SHA-256(previous chain hash || "
                     "leaf hash)")


def _check_nodes(tables: LedgerTables, replay: _Replay, problems: _Problems) -> None:
    nodes, size = replay.nodes, replay.edge.size
    stored = {(int(r[0]), int(r[1])): r[2] for r in tables.nodes()}
    for key, node in nodes.items():
        if key in stored and stored[key] != node.hex():
            problems.add(f"subtree node level {key[0]} index {key[1]}: stored root differs "
                         "from the store's events")
    ledger_size = tables.head()[0]
    for level, index in stored.keys() - nodes.keys():
        if (index + 1) << level <= size:
            problems.add(f"subtree node level {level} index {index}: not a subtree of the "
                         "store's events")
    for level, index in nodes.keys() - stored.keys():
        if (index + 1) << level <= ledger_size:
            problems.add(f"subtree node level {level} index {index}: missing from the ledger")


def _check_checkpoint(checkpoint: StoredCheckpoint, replay: _Replay,
                      open_checkpoint: OpenCheckpoint | None, problems: _Problems) -> None:
    where = f"checkpoint of size {checkpoint.size}"
    try:
        if open_checkpoint is not None:
            signed = open_checkpoint(checkpoint.note)
        else:
            signed = parse_checkpoint(parse_note(checkpoint.note).text)
    except CheckpointError as exc:
        problems.add(f"{where}: the note does not verify: {exc}")
        return
    if signed.size != checkpoint.size or signed.root != checkpoint.root:
        problems.add(f"{where}: the signed note says size {signed.size}, root "
                     f"{signed.root.hex()[:16]}..., not what its row says")
    root = replay.roots.get(checkpoint.size)
    if root is None:
        problems.add(f"{where}: the store has only {replay.edge.size} events; the signed tree "
                     "is longer (events were deleted from the store)")
    elif root != signed.root:
        problems.add(f"{where}: the store's events give root {root.hex()[:16]}..., the "
                     f"checkpoint signed {signed.root.hex()[:16]}...: the log was rewritten")


def _notifications(source: NotificationSource) -> Iterator[Any]:
    start = 1
    while True:
        batch = source.notifications(start, _BATCH)
        if not batch:
            return
        yield from batch
        start = batch[-1].id + 1


def _ledger_rows(tables: LedgerTables) -> Iterator[tuple[Any, ...]]:
    start = 0
    while True:
        rows = tables.rows(start, _BATCH)
        if not rows:
            return
        yield from rows
        start = int(rows[-1][0]) + 1
