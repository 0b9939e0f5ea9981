"""Building what the ledger endpoints serve: an inference's receipt (DESIGN section 5), a
consistency proof between two signed tree sizes, the latest checkpoint.

Proofs are always against a checkpoint that is already signed and stored, never against the
live tree, so everything a receipt contains can be checked offline with the published key.
The caller (the HTTP edge) has already established that the inference belongs to the
requesting tenant and how many events the store holds for it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.merkle import consistency_proof, inclusion_proof
from projections.ledger_tables import LedgerTables, StoredCheckpoint, StoredEntry
from projections.view import Session

FORMAT = "ainfera-receipt/v1"


@dataclass(frozen=True, slots=True)
class Pending:
    """The receipt cannot be built yet; `reason` says what it is waiting for."""

    reason: str


def build_receipt(session: Session, aggregate_id: str, public_id: str, origin: str,
                  stored_events: int, since: int | None = None) -> dict[str, Any] | Pending:
    """The receipt of one inference, or Pending while its events are not all sequenced or not
    all inside the latest signed checkpoint.

    Args:
        aggregate_id: the inference's UUID as text (the ledger's `aggregate_id`).
        stored_events: how many events the event store holds for it; fewer leaves means the
            sequencer has not caught up yet.
        since: the size of an older checkpoint the client kept; the receipt then carries a
            consistency proof from it (`consistency`), which `ainfera receipt verify
            --checkpoint` needs.
    """
    tables = LedgerTables(session)
    entries = tables.entries_of(aggregate_id)
    if len(entries) < stored_events:
        return Pending(f"{len(entries)} of the inference's {stored_events} events are on the "
                       "ledger so far")
    checkpoint = tables.latest_checkpoint()
    last = entries[-1].leaf_index if entries else -1
    if not entries or checkpoint is None or checkpoint.size <= last:
        return Pending(f"leaf {last} is not yet inside a signed checkpoint")
    tree = tables.tree()
    receipt: dict[str, Any] = {
        "format": FORMAT,
        "inference_id": public_id,
        "origin": origin,
        "checkpoint": checkpoint.note,
        "entries": [
            _entry(tables, entry, inclusion_proof(entry.leaf_index, checkpoint.size, tree))
            for entry in entries
        ],
    }
    if since is not None:
        older = _older_checkpoint(tables, since, checkpoint)
        receipt["consistency"] = {
            "from_checkpoint": older.note,
            "proof": b64_list(consistency_proof(older.size, checkpoint.size, tree)),
        }
    return receipt


def consistency(session: Session, first: int, second: int) -> dict[str, Any]:
    """PROOF(first, D[second]) for two sizes within the latest signed checkpoint."""
    tables = LedgerTables(session)
    latest = tables.latest_checkpoint()
    signed = latest.size if latest else 0
    if not 0 < first <= second:
        raise BadSizeError(f"need 0 < first <= second, got first={first} second={second}")
    if second > signed:
        raise BadSizeError(f"second={second} is beyond the latest signed checkpoint "
                           f"(size {signed})")
    proof = consistency_proof(first, second, tables.tree())
    return {"first": first, "second": second, "proof": b64_list(proof)}


RECENT_CHECKPOINTS = (
    "SELECT tree_size, root_hash, note, signed_at FROM ledger_checkpoints "
    "WHERE tree_size < %s ORDER BY tree_size DESC LIMIT %s"
)


def recent_checkpoints(session: Session, limit: int, before: int | None) -> list[dict[str, Any]]:
    """Signed checkpoints, largest tree first, below tree size `before` when given."""
    rows = session.execute(RECENT_CHECKPOINTS, (before if before is not None else 2**63 - 1,
                                                limit))
    return [{"tree_size": int(size), "root_hash": _b64(bytes.fromhex(root)), "note": note,
             "signed_at": signed_at} for size, root, note, signed_at in rows]


def latest_note(session: Session) -> str | None:
    checkpoint = LedgerTables(session).latest_checkpoint()
    return checkpoint.note if checkpoint else None


def _older_checkpoint(tables: LedgerTables, since: int,
                      checkpoint: StoredCheckpoint) -> StoredCheckpoint:
    if not 0 < since <= checkpoint.size:
        raise BadSizeError(f"since={since} is not between 1 and the receipt's checkpoint size "
                           f"{checkpoint.size}")
    older = tables.checkpoint_at(since)
    if older is None:
        raise BadSizeError(f"since={since} is not the size of a checkpoint this log signed")
    return older


def _entry(tables: LedgerTables, entry: StoredEntry, proof: Sequence[bytes]) -> dict[str, Any]:
    if entry.event_json is None:
        raise MissingEventError(f"leaf {entry.leaf_index} has no stored event object")
    return {
        "leaf_index": entry.leaf_index,
        "event": json.loads(entry.event_json),
        "leaf_hash": _b64(entry.leaf_hash),
        "prev_chain_hash": _b64(tables.chain_before(entry.leaf_index)),
        "chain_hash": _b64(entry.chain_hash),
        "inclusion_proof": b64_list(proof),
    }


def b64_list(hashes: Sequence[bytes]) -> list[str]:
    return [_b64(h) for h in hashes]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class BadSizeError(ValueError):
    """Tree sizes a proof cannot be built for; the message says which and why."""


class MissingEventError(LookupError):
    """A ledger row without its event object (a row written before migration 0003)."""
