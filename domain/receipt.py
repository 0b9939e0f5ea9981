"""The offline checks of an inference receipt (format `ainfera-receipt/v1`, DESIGN section 5).

A receipt holds one inference's events with their leaf indices, chain links and inclusion proofs
against a signed checkpoint. `check_receipt` runs every check in a fixed order and stops at the
first failure, raising `ReceiptVerificationError` with the check's name, so "what is wrong" is
machine-readable. Canonical JSON and signatures are outside this room: the caller passes
`open_checkpoint` (verifies the note, returns the body) and `leaf_hash_of` (hashes an event).

The chain links are only checked for self-consistency and, where two entries are adjacent
leaves, for continuity: the checkpoint signs the Merkle root, not the chain, so inclusion proofs
are what bind events to the signed log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Any, TypeVar
from uuid import UUID

from domain.checkpoint import (
    BadSignatureError,
    Checkpoint,
    CheckpointError,
    UnknownKeyError,
    b64decode_strict,
)
from domain.hashchain import GENESIS, chain_hash
from domain.ids import parse_inference_id
from domain.merkle import MerkleError, verify_consistency, verify_inclusion

FORMAT = "ainfera-receipt/v1"
_T = TypeVar("_T")

OpenCheckpoint = Callable[[str], Checkpoint]
LeafHasher = Callable[[Mapping[str, Any]], bytes]


class Check(StrEnum):
    FORMAT = "format"
    VKEY = "vkey"
    CHECKPOINT = "checkpoint"
    SIGNATURE = "signature"
    ORIGIN = "origin"
    LEAF_INDEX = "leaf_index"
    LEAF_HASH = "leaf_hash"
    CHAIN_LINK = "chain_link"
    INCLUSION = "inclusion"
    TENANT = "tenant"
    AGGREGATE = "aggregate"
    ORDER = "order"
    VERSION = "version"
    OLDER_CHECKPOINT = "older_checkpoint"
    CONSISTENCY = "consistency"


@dataclass(frozen=True, slots=True)
class Entry:
    leaf_index: int
    event: Mapping[str, Any]
    leaf_hash: bytes
    prev_chain_hash: bytes
    chain_hash: bytes
    inclusion_proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    inference_id: str
    aggregate_id: UUID
    tenant_id: str
    checkpoint: Checkpoint
    entries: tuple[Entry, ...]
    older_checkpoint: Checkpoint | None = None


def check_receipt(
    receipt: Mapping[str, Any],
    open_checkpoint: OpenCheckpoint,
    leaf_hash_of: LeafHasher,
    older_checkpoint: str | None = None,
    consistency_proof: Sequence[str] | None = None,
) -> VerifiedReceipt:
    """Verifies a receipt; `older_checkpoint` and `consistency_proof` override its `consistency`."""
    if not isinstance(receipt, Mapping) or receipt.get("format") != FORMAT:
        raise ReceiptVerificationError(Check.FORMAT, None, f"not an {FORMAT} receipt")
    inference_id = _field(receipt, "inference_id", str, None)
    origin = _field(receipt, "origin", str, None)
    raw_entries = _field(receipt, "entries", list, None)
    if not raw_entries:
        raise ReceiptVerificationError(Check.FORMAT, None, "receipt has no entries")
    try:
        aggregate_id = parse_inference_id(inference_id)
    except ValueError:
        raise ReceiptVerificationError(
            Check.FORMAT, None, f"inference_id {inference_id!r} is not an inference id"
        ) from None
    checkpoint = _open(open_checkpoint, _field(receipt, "checkpoint", str, None), older=False)
    if checkpoint.origin != origin:
        raise ReceiptVerificationError(
            Check.ORIGIN, None, f"checkpoint is for log {checkpoint.origin!r}, receipt {origin!r}"
        )
    entries = tuple(_parse_entry(raw) for raw in raw_entries)
    for entry in entries:
        _check_entry(entry, checkpoint, leaf_hash_of)
    tenant_id = _check_sequence(entries, aggregate_id)
    older = receipt.get("consistency")
    if older is not None and not isinstance(older, Mapping):
        raise ReceiptVerificationError(Check.FORMAT, None, "consistency is not an object")
    if older_checkpoint is None and older is not None:
        older_checkpoint = _field(older, "from_checkpoint", str, None)
        consistency_proof = _field(older, "proof", list, None)
    old = None
    if older_checkpoint is not None:
        old = _check_consistency(checkpoint, older_checkpoint, consistency_proof, open_checkpoint)
    return VerifiedReceipt(inference_id, aggregate_id, tenant_id, checkpoint, entries, old)


def _check_entry(entry: Entry, checkpoint: Checkpoint, leaf_hash_of: LeafHasher) -> None:
    at = entry.leaf_index
    if entry.event.get("leaf_index") != at or isinstance(entry.event.get("leaf_index"), bool):
        raise ReceiptVerificationError(
            Check.LEAF_INDEX, at, f"event says leaf {entry.event.get('leaf_index')!r}, entry {at}"
        )
    try:
        recomputed = leaf_hash_of(entry.event)
    except ValueError as exc:
        raise ReceiptVerificationError(
            Check.LEAF_HASH, at, f"event cannot be hashed: {exc}"
        ) from exc
    if recomputed != entry.leaf_hash:
        raise ReceiptVerificationError(
            Check.LEAF_HASH,
            at,
            "leaf_hash is not SHA-256(0x00 || JCS(event)): the event or its hash was altered",
        )
    if at == 0 and entry.prev_chain_hash != GENESIS:
        raise ReceiptVerificationError(Check.CHAIN_LINK, at, "leaf 0 must chain from zero bytes")
    if chain_hash(entry.prev_chain_hash, entry.leaf_hash) != entry.chain_hash:
        raise ReceiptVerificationError(
            Check.CHAIN_LINK, at, "chain_hash is not SHA-256(prev_chain_hash || leaf_hash)"
        )
    try:
        verify_inclusion(
            entry.leaf_hash, at, checkpoint.size, entry.inclusion_proof, checkpoint.root
        )
    except MerkleError as exc:
        raise ReceiptVerificationError(Check.INCLUSION, at, str(exc)) from exc


def _check_sequence(entries: Sequence[Entry], aggregate_id: UUID) -> str:
    """The entries are all of this inference and one tenant, in log order, versions 1, 2, 3...

    Each property is checked over all entries before the next, so a reordering is reported as
    `order` rather than as the version gap it also causes.
    """
    tenant_id = _event_field(entries[0], "tenant_id", str)
    for entry in entries:
        tenant = _event_field(entry, "tenant_id", str)
        if tenant != tenant_id:
            raise ReceiptVerificationError(
                Check.TENANT,
                entry.leaf_index,
                f"event of tenant {tenant!r} in a receipt of tenant {tenant_id!r}",
            )
        aggregate = _event_field(entry, "aggregate_id", str)
        try:
            same = UUID(aggregate) == aggregate_id
        except ValueError:
            same = False
        if not same:
            raise ReceiptVerificationError(
                Check.AGGREGATE,
                entry.leaf_index,
                f"event of aggregate {aggregate!r} in the receipt of {aggregate_id}",
            )
    for previous, entry in pairwise(entries):
        if entry.leaf_index <= previous.leaf_index:
            raise ReceiptVerificationError(
                Check.ORDER,
                entry.leaf_index,
                f"leaf {entry.leaf_index} is listed after leaf {previous.leaf_index}",
            )
    for version, entry in enumerate(entries, start=1):
        if _event_field(entry, "version", int) != version:
            raise ReceiptVerificationError(
                Check.VERSION,
                entry.leaf_index,
                f"event is version {entry.event['version']}, expected {version}"
                " (versions start at 1 with none missing)",
            )
    for previous, entry in pairwise(entries):
        if entry.leaf_index == previous.leaf_index + 1 and (
            entry.prev_chain_hash != previous.chain_hash
        ):
            raise ReceiptVerificationError(
                Check.CHAIN_LINK,
                entry.leaf_index,
                f"prev_chain_hash is not the chain hash of leaf {previous.leaf_index}",
            )
    return tenant_id


def _check_consistency(
    checkpoint: Checkpoint,
    older_note: str,
    proof: Sequence[str] | None,
    open_checkpoint: OpenCheckpoint,
) -> Checkpoint:
    older = _open(open_checkpoint, older_note, older=True)
    if older.origin != checkpoint.origin:
        raise ReceiptVerificationError(
            Check.OLDER_CHECKPOINT, None, f"older checkpoint is for log {older.origin!r}"
        )
    hashes = [_hash(h, "consistency proof hash", Check.CONSISTENCY, None) for h in proof or ()]
    try:
        verify_consistency(older.size, checkpoint.size, older.root, checkpoint.root, hashes)
    except MerkleError as exc:
        raise ReceiptVerificationError(Check.CONSISTENCY, None, str(exc)) from exc
    return older


def _open(open_checkpoint: OpenCheckpoint, note: str, older: bool) -> Checkpoint:
    try:
        return open_checkpoint(note)
    except (UnknownKeyError, BadSignatureError) as exc:
        check = Check.OLDER_CHECKPOINT if older else Check.SIGNATURE
        raise ReceiptVerificationError(check, None, str(exc)) from exc
    except CheckpointError as exc:
        check = Check.OLDER_CHECKPOINT if older else Check.CHECKPOINT
        raise ReceiptVerificationError(check, None, str(exc)) from exc


def _parse_entry(raw: object) -> Entry:
    if not isinstance(raw, Mapping):
        raise ReceiptVerificationError(Check.FORMAT, None, "an entry is not an object")
    at = _field(raw, "leaf_index", int, None)
    proof = _field(raw, "inclusion_proof", list, at)
    return Entry(
        leaf_index=at,
        event=_field(raw, "event", dict, at),
        leaf_hash=_hash(_field(raw, "leaf_hash", str, at), "leaf_hash", Check.FORMAT, at),
        prev_chain_hash=_hash(
            _field(raw, "prev_chain_hash", str, at), "prev_chain_hash", Check.FORMAT, at
        ),
        chain_hash=_hash(_field(raw, "chain_hash", str, at), "chain_hash", Check.FORMAT, at),
        inclusion_proof=tuple(_hash(h, "inclusion proof hash", Check.FORMAT, at) for h in proof),
    )


def _field(obj: Mapping[str, Any], key: str, kind: type[_T], at: int | None) -> _T:
    value = obj.get(key)
    # JSON true is not the number 1: bool is a subclass of int, so refuse it explicitly.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ReceiptVerificationError(
            Check.FORMAT, at, f"{key} is missing or not a {kind.__name__}"
        )
    return value


def _event_field(entry: Entry, key: str, kind: type[_T]) -> _T:
    return _field(entry.event, key, kind, entry.leaf_index)


def _hash(value: object, what: str, check: Check, at: int | None) -> bytes:
    if not isinstance(value, str):
        raise ReceiptVerificationError(check, at, f"{what} is not a base64 string")
    try:
        digest = b64decode_strict(value, what, ValueError)
    except ValueError as exc:
        raise ReceiptVerificationError(check, at, str(exc)) from None
    if len(digest) != 32:
        raise ReceiptVerificationError(check, at, f"{what} is {len(digest)} bytes, not 32")
    return digest


class ReceiptVerificationError(Exception):
    """A receipt that fails `check` (a `Check` name), at `leaf_index` when one entry is to blame."""

    def __init__(self, check: Check, leaf_index: int | None, message: str) -> None:
        where = f" at leaf {leaf_index}" if leaf_index is not None else ""
        super().__init__(f"{check}{where}: {message}")
        self.check = check
        self.leaf_index = leaf_index
        self.message = message
