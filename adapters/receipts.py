"""Offline verification of inference receipts and tlog-proofs: the core of
`ainfera receipt verify RECEIPT.json --vkey VKEY [--checkpoint OLDER.txt]`.

The checks themselves are pure (domain.receipt); this module supplies the two outside pieces
they need, RFC 8785 leaf hashing and Ed25519 note verification, and the C2SP tlog-proof@v1 text
form for handing one leaf's proof to tools that speak it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.jcs import jcs, leaf_hash_of_event
from adapters.signer import Ed25519Verifier, verify_note
from domain.checkpoint import Checkpoint, CheckpointError, open_note, parse_checkpoint
from domain.merkle import leaf_hash as merkle_leaf_hash
from domain.merkle import verify_inclusion
from domain.receipt import Check, ReceiptVerificationError, VerifiedReceipt, check_receipt
from domain.tlog_proof import (
    MalformedTlogProofError,
    TlogProof,
    format_tlog_proof,
    parse_tlog_proof,
)

__all__ = [
    "Check",
    "ReceiptVerificationError",
    "VerifiedReceipt",
    "tlog_proof_text",
    "tlog_proofs_of_receipt",
    "verify_receipt",
    "verify_tlog_proof",
]


def verify_receipt(
    receipt: Mapping[str, Any],
    vkey: str,
    older_checkpoint: str | None = None,
    consistency_proof: Sequence[str] | None = None,
) -> VerifiedReceipt:
    """Verifies every check of a receipt against the log's verifier key.

    `older_checkpoint` (a signed note the caller kept) with `consistency_proof` (base64 hashes)
    also proves the receipt's checkpoint extends it; without them a `consistency` member of the
    receipt is used when present. Raises ReceiptVerificationError naming the failed check.
    """
    try:
        verifier = Ed25519Verifier.from_vkey(vkey)
    except CheckpointError as exc:
        raise ReceiptVerificationError(Check.VKEY, None, str(exc)) from exc

    def open_checkpoint(note: str) -> Checkpoint:
        return parse_checkpoint(open_note(note, [verifier]).text)

    return check_receipt(
        receipt,
        open_checkpoint=open_checkpoint,
        leaf_hash_of=leaf_hash_of_event,
        older_checkpoint=older_checkpoint,
        consistency_proof=consistency_proof,
    )


def tlog_proof_text(
    leaf_index: int, inclusion_proof: Sequence[bytes], checkpoint_note: str, extra: bytes = b""
) -> str:
    """The c2sp.org/tlog-proof@v1 text for one leaf; `extra` is unauthenticated context."""
    return format_tlog_proof(leaf_index, inclusion_proof, checkpoint_note, extra)


def tlog_proofs_of_receipt(receipt: Mapping[str, Any]) -> dict[int, str]:
    """One tlog-proof per receipt entry, by leaf index, with JCS(event) as its extra data, so
    the proof alone is enough to recompute the leaf hash.

    Call it on a receipt that verify_receipt accepted: it only reshapes what is there.
    """
    proofs: dict[int, str] = {}
    for entry in receipt["entries"]:
        hashes = [base64.b64decode(h, validate=True) for h in entry["inclusion_proof"]]
        proofs[entry["leaf_index"]] = tlog_proof_text(
            entry["leaf_index"], hashes, receipt["checkpoint"], jcs(entry["event"])
        )
    return proofs


def verify_tlog_proof(
    text: str, vkey: str, leaf_hash: bytes | None = None
) -> tuple[TlogProof, Checkpoint]:
    """Checks a tlog-proof: its checkpoint is signed by `vkey` and includes the leaf at its index.

    The leaf is `leaf_hash` when given, else SHA-256(0x00 || extra): extra data is unauthenticated
    until the inclusion proof of its hash succeeds, and is trusted only after this returns.
    Raises MalformedTlogProofError, a CheckpointError, or a MerkleError.
    """
    proof = parse_tlog_proof(text)
    if leaf_hash is None:
        if not proof.extra:
            raise MalformedTlogProofError("no leaf hash given and the proof has no extra data")
        leaf_hash = merkle_leaf_hash(proof.extra)
    checkpoint = verify_note(proof.checkpoint, vkey)
    verify_inclusion(
        leaf_hash, proof.leaf_index, checkpoint.size, proof.inclusion_proof, checkpoint.root
    )
    return proof, checkpoint
