"""`ainfera receipt verify RECEIPT.json --vkey VKEY [--checkpoint OLDER.txt]`: a receipt
checked offline, with no server, no database and no settings.

It prints one line: what was proven, or which check failed for which leaf (the names of
domain.receipt.Check), and exits 0 only when every check passed. Reading is strict: a receipt
with a duplicated JSON key is refused, because two parsers could disagree on which value the
signature-backed hashes cover.

With `--checkpoint OLDER.txt` (a signed checkpoint the auditor kept earlier) it also proves
that the receipt's checkpoint extends the kept one. The consistency proof comes from the
receipt itself (`GET /v1/inferences/{id}/receipt?since=<size of OLDER>`) or from
`--consistency PROOF.json` (the body of `GET /v1/ledger/consistency?first=..&second=..`); the
kept checkpoint, never the server's copy of it, is what the proof is checked against.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.receipts import Check, ReceiptVerificationError, VerifiedReceipt, verify_receipt
from domain.checkpoint import CheckpointError, parse_checkpoint, parse_note


def add_receipt_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Adds `receipt verify` to the `ainfera` parser's subcommands."""
    receipt = sub.add_parser("receipt", help="check inference receipts offline").add_subparsers(
        dest="action", required=True, parser_class=parser_class, metavar="ACTION")
    verify = receipt.add_parser(
        "verify", help="verify a receipt offline (no server, database or settings used)",
        description="Check every leaf, chain link and inclusion proof of a receipt (GET "
                    "/v1/inferences/ID/receipt) and its checkpoint's signature; exit 0 only "
                    "when all pass. Reads no environment variable.")
    verify.add_argument("receipt", help="the receipt JSON file")
    verify.add_argument("--vkey", required=True,
                        help="the log's verifier key (GET /v1/ledger/public-key), or a file "
                             "holding it")
    verify.add_argument("--checkpoint", help="an older signed checkpoint you kept: also prove "
                                             "the log only grew since (default: none)")
    verify.add_argument("--consistency",
                        help="a consistency proof file (GET /v1/ledger/consistency) for "
                             "--checkpoint (default: the proof inside the receipt)")
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.set_defaults(handler=cmd_receipt_verify)


def cmd_receipt_verify(args: argparse.Namespace, settings: object) -> int:
    if args.consistency and not args.checkpoint:
        print("ainfera: error: --consistency needs --checkpoint (the checkpoint it starts from)",
              file=sys.stderr)
        return 2
    try:
        verified = verify_files(args.receipt, args.vkey, args.checkpoint, args.consistency)
    except ReceiptVerificationError as exc:
        if args.json:
            print(json.dumps({"verified": False, "check": str(exc.check),
                              "leaf_index": exc.leaf_index, "error": exc.message}))
        print(f"ainfera: error: receipt does NOT verify: {exc}", file=sys.stderr)
        return 1
    kept = args.checkpoint is not None
    print(json.dumps(_summary(verified, kept)) if args.json else _summary_line(verified, kept))
    return 0


def verify_files(receipt_path: str, vkey: str, checkpoint_path: str | None,
                 consistency_path: str | None) -> VerifiedReceipt:
    """Reads the files and runs every check; raises ReceiptVerificationError naming the failure
    (unreadable input is reported as the `format`, `vkey` or `older_checkpoint` check)."""
    receipt = _read_json(receipt_path, "receipt", Check.FORMAT)
    vkey_text = _read_vkey(vkey)
    if checkpoint_path is None:
        return verify_receipt(receipt, vkey_text)
    older = _read_text(checkpoint_path, "checkpoint", Check.OLDER_CHECKPOINT)
    proof = _consistency_proof(receipt, consistency_path, _size_of(older))
    return verify_receipt(receipt, vkey_text, older_checkpoint=older, consistency_proof=proof)


def _consistency_proof(receipt: Any, path: str | None, kept_size: int | None) -> Sequence[str]:
    source: Any
    if path is not None:
        source = _read_json(path, "consistency proof", Check.CONSISTENCY)
        starts = source.get("first") if isinstance(source, dict) else None
    else:
        source = receipt.get("consistency") if isinstance(receipt, dict) else None
        if source is None:
            raise ReceiptVerificationError(
                Check.CONSISTENCY, None,
                "the receipt has no consistency proof: fetch it with ?since=<size of your "
                "checkpoint>, or pass --consistency PROOF.json")
        starts = _size_of(source.get("from_checkpoint")) if isinstance(source, dict) else None
    if kept_size is not None and starts is not None and starts != kept_size:
        # Only a hint: the proof is checked against the kept checkpoint either way.
        raise ReceiptVerificationError(
            Check.CONSISTENCY, None,
            f"the consistency proof starts at tree size {starts}, your checkpoint has size "
            f"{kept_size}: fetch the receipt with ?since={kept_size}")
    proof = source.get("proof") if isinstance(source, dict) else None
    if not isinstance(proof, list) or not all(isinstance(h, str) for h in proof):
        raise ReceiptVerificationError(Check.CONSISTENCY, None,
                                       "the consistency proof is not a list of base64 hashes")
    return proof


def _size_of(note: object) -> int | None:
    """The tree size a signed checkpoint note claims, unverified (None if unreadable)."""
    if not isinstance(note, str):
        return None
    try:
        return parse_checkpoint(parse_note(note).text).size
    except CheckpointError:
        return None


def _read_vkey(value: str) -> str:
    path = Path(value)
    if "+" not in value and path.is_file():
        return _read_text(value, "vkey", Check.VKEY).strip()
    return value.strip()


def _read_text(path: str, what: str, check: Check) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReceiptVerificationError(
            check, None, f"cannot read the {what} {path}: {exc}") from None


def _read_json(path: str, what: str, check: Check) -> Any:
    text = _read_text(path, what, check)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise ReceiptVerificationError(
            check, None, f"the {what} {path} is not JSON: {exc}") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _summary(verified: VerifiedReceipt, kept: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "verified": True, "inference_id": verified.inference_id,
        "tenant_id": verified.tenant_id, "origin": verified.checkpoint.origin,
        "tree_size": verified.checkpoint.size,
        "leaves": [e.leaf_index for e in verified.entries],
        "events": [e.event.get("type") for e in verified.entries],
    }
    if verified.older_checkpoint is not None:
        out["consistent_with_size"] = verified.older_checkpoint.size
        out["consistent_with"] = "your checkpoint" if kept else "the receipt's own checkpoint"
    return out


def _summary_line(verified: VerifiedReceipt, kept: bool) -> str:
    leaves = ", ".join(str(e.leaf_index) for e in verified.entries)
    line = (f"receipt verifies: {verified.inference_id}, {len(verified.entries)} events "
            f"(leaves {leaves}) of tenant {verified.tenant_id} in {verified.checkpoint.origin} "
            f"at tree size {verified.checkpoint.size}")
    older = verified.older_checkpoint
    if older is not None and kept:
        line += f"; the log extends your checkpoint of size {older.size}"
    elif older is not None:
        # The server chose that checkpoint: it proves nothing until compared with one kept.
        line += (f"; it extends the receipt's own checkpoint of size {older.size} (pass "
                 "--checkpoint with one you kept to prove the log only grew)")
    return line

