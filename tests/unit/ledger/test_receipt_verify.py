"""Receipt verification against a small synthetic ledger: an honest receipt passes, and every
kind of tampering fails with the check that names it."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid5

import pytest

from adapters.jcs import leaf_hash_of_event
from adapters.receipts import (
    Check,
    ReceiptVerificationError,
    tlog_proof_text,
    tlog_proofs_of_receipt,
    verify_receipt,
    verify_tlog_proof,
)
from adapters.signer import Ed25519NoteSigner
from domain.checkpoint import CheckpointError
from domain.hashchain import GENESIS, chain_hash
from domain.merkle import MerkleError, consistency_proof, inclusion_proof
from domain.merkle_tree import SubtreeCache
from domain.tlog_proof import MalformedTlogProofError, parse_tlog_proof

ORIGIN = "ledger.test/log"
NS = UUID("00000000-0000-0000-0000-000000000001")
A, B, C, NOISE = (uuid5(NS, name) for name in ("a", "b", "c", "noise"))
# Log order: (aggregate, tenant). A is the receipt's inference; B is another tenant's inference,
# C another inference of A's tenant. Leaves 2-3 and 10-11 are adjacent, so their links chain.
LAYOUT = [
    (NOISE, "t-x"), (B, "t-b"), (A, "t-a"), (A, "t-a"), (B, "t-b"), (C, "t-a"), (NOISE, "t-x"),
    (A, "t-a"), (B, "t-b"), (C, "t-a"), (A, "t-a"), (A, "t-a"), (NOISE, "t-x"),
]  # fmt: skip
TYPES = ["Routed", "Dispatched", "Streamed", "Completed", "Debited"]
B64 = base64.b64encode


def b64(data: bytes) -> str:
    return B64(data).decode()


class Ledger:
    def __init__(self, rewrite_leaf: int = -1) -> None:
        self.events: list[dict[str, Any]] = []
        versions: dict[UUID, int] = {}
        for i, (aggregate, tenant) in enumerate(LAYOUT):
            versions[aggregate] = versions.get(aggregate, 0) + 1
            v = versions[aggregate]
            self.events.append({
                "leaf_index": i, "aggregate_id": str(aggregate), "version": v,
                "type": TYPES[(v - 1) % len(TYPES)], "tenant_id": tenant,
                "recorded_at": f"2025-06-01T12:00:{i:02d}.000001+00:00",
                "agent_id": None, "request_id": f"req_{i}" + ("-new" if i == rewrite_leaf else ""),
                "candidates": [{"model": "m-1", "est_cost_usd": "0.0012", "eligible": True}],
                "usage": {"input_tokens": 10 + i, "output_tokens": 20},
            })  # fmt: skip
        self.leaves = [leaf_hash_of_event(e) for e in self.events]
        self.chain: list[bytes] = []
        for leaf in self.leaves:
            self.chain.append(chain_hash(self.chain[-1] if self.chain else GENESIS, leaf))
        self.tree = SubtreeCache(lambda s, e: self.leaves[s:e], min_level=1)

    def checkpoint(self, signer: Ed25519NoteSigner, size: int) -> str:
        return signer.sign_checkpoint(ORIGIN, size, self.tree(0, size))

    def receipt(self, signer: Ed25519NoteSigner, aggregate: UUID = A) -> dict[str, Any]:
        size = len(self.events)
        entries = [
            {
                "leaf_index": i, "event": copy.deepcopy(e), "leaf_hash": b64(self.leaves[i]),
                "prev_chain_hash": b64(self.chain[i - 1] if i else GENESIS),
                "chain_hash": b64(self.chain[i]),
                "inclusion_proof": [b64(h) for h in inclusion_proof(i, size, self.tree)],
            }
            for i, e in enumerate(self.events)
            if e["aggregate_id"] == str(aggregate)
        ]  # fmt: skip
        return {
            "format": "ainfera-receipt/v1", "inference_id": f"msg_{aggregate.hex}",
            "origin": ORIGIN, "checkpoint": self.checkpoint(signer, size), "entries": entries,
        }  # fmt: skip


@pytest.fixture(scope="module")
def signer() -> Ed25519NoteSigner:
    return Ed25519NoteSigner.generate(ORIGIN)


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()


def fails(receipt: dict[str, Any], vkey: str, check: Check, **kwargs: Any) -> int | None:
    with pytest.raises(ReceiptVerificationError) as info:
        verify_receipt(receipt, vkey, **kwargs)
    assert info.value.check == check, str(info.value)
    assert str(info.value).startswith(str(check))
    return info.value.leaf_index


def mutations(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every way of changing one scalar, adding a key or dropping a key, deep in `value`."""
    if isinstance(value, dict):
        yield (*path, "+"), {**value, "extra": 1}
        for key, item in value.items():
            yield (*path, key, "-"), {k: v for k, v in value.items() if k != key}
            for sub, changed in mutations(item, (*path, key)):
                yield sub, {**value, key: changed}
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for sub, changed in mutations(item, (*path, i)):
                yield sub, [*value[:i], changed, *value[i + 1 :]]
    elif isinstance(value, bool) or value is None:
        yield path, not value if value is not None else 0
    elif isinstance(value, int):
        yield path, value + 1
    else:
        yield path, value[:-1] + chr(ord(value[-1]) ^ 1)


def test_an_honest_receipt_verifies(ledger: Ledger, signer: Ed25519NoteSigner) -> None:
    receipt = json.loads(json.dumps(ledger.receipt(signer)))
    verified = verify_receipt(receipt, signer.vkey)
    assert verified.aggregate_id == A
    assert verified.tenant_id == "t-a"
    assert (verified.checkpoint.origin, verified.checkpoint.size) == (ORIGIN, 13)
    assert [e.leaf_index for e in verified.entries] == [2, 3, 7, 10, 11]
    assert [e.event["type"] for e in verified.entries] == TYPES


def test_any_change_to_any_event_fails_the_leaf_hash(
    ledger: Ledger, signer: Ed25519NoteSigner
) -> None:
    receipt = ledger.receipt(signer)
    tried = 0
    for n, entry in enumerate(receipt["entries"]):
        for path, changed in mutations(entry["event"]):
            tampered = copy.deepcopy(receipt)
            tampered["entries"][n]["event"] = changed
            want = Check.LEAF_INDEX if path[0] == "leaf_index" else Check.LEAF_HASH
            assert fails(tampered, signer.vkey, want) == entry["leaf_index"], path
            tried += 1
    assert tried > 5 * 20


def test_a_float_in_an_event_is_named(ledger: Ledger, signer: Ed25519NoteSigner) -> None:
    receipt = ledger.receipt(signer)
    receipt["entries"][0]["event"]["usage"]["input_tokens"] = 12.0
    with pytest.raises(ReceiptVerificationError, match="is a float"):
        verify_receipt(receipt, signer.vkey)


def test_reordered_dropped_and_foreign_leaves_are_named(
    ledger: Ledger, signer: Ed25519NoteSigner
) -> None:
    receipt = ledger.receipt(signer)
    entries = receipt["entries"]
    assert fails({**receipt, "entries": [entries[1], entries[0], *entries[2:]]}, signer.vkey,
                 Check.ORDER) == 2  # fmt: skip
    assert fails({**receipt, "entries": [*entries[:2], *entries[3:]]}, signer.vkey,
                 Check.VERSION) == 10  # fmt: skip
    assert fails({**receipt, "entries": entries[1:]}, signer.vkey, Check.VERSION) == 3
    foreign = ledger.receipt(signer, B)["entries"][2]  # another tenant's leaf 8, valid proof
    assert fails({**receipt, "entries": [*entries[:2], foreign, *entries[3:]]}, signer.vkey,
                 Check.TENANT) == 8  # fmt: skip
    sibling = ledger.receipt(signer, C)["entries"][1]  # same tenant, other inference, leaf 9
    assert fails({**receipt, "entries": [*entries[:3], sibling, *entries[4:]]}, signer.vkey,
                 Check.AGGREGATE) == 9  # fmt: skip
    assert fails({**receipt, "inference_id": f"msg_{C.hex}"}, signer.vkey, Check.AGGREGATE) == 2


def test_proofs_and_links_are_checked(ledger: Ledger, signer: Ed25519NoteSigner) -> None:
    receipt = ledger.receipt(signer)
    t = copy.deepcopy(receipt)
    t["entries"][2]["inclusion_proof"][1] = b64(bytes(32))
    assert fails(t, signer.vkey, Check.INCLUSION) == 7
    t = copy.deepcopy(receipt)
    t["entries"][2]["inclusion_proof"].pop()
    assert fails(t, signer.vkey, Check.INCLUSION) == 7
    t = copy.deepcopy(receipt)
    t["entries"][3]["chain_hash"] = b64(bytes(32))
    assert fails(t, signer.vkey, Check.CHAIN_LINK) == 10
    # A self-consistent link that does not continue from leaf 10's link.
    t = copy.deepcopy(receipt)
    fake_prev = bytes(range(32))
    t["entries"][4]["prev_chain_hash"] = b64(fake_prev)
    t["entries"][4]["chain_hash"] = b64(chain_hash(fake_prev, ledger.leaves[11]))
    assert fails(t, signer.vkey, Check.CHAIN_LINK) == 11


def test_checkpoint_signatures_and_origin(ledger: Ledger, signer: Ed25519NoteSigner) -> None:
    receipt = ledger.receipt(signer)
    impostor = Ed25519NoteSigner.generate(ORIGIN)
    assert fails(ledger.receipt(impostor), signer.vkey, Check.SIGNATURE) is None
    forged = receipt["checkpoint"].replace("\n13\n", "\n14\n")
    fails({**receipt, "checkpoint": forged}, signer.vkey, Check.SIGNATURE)
    fails({**receipt, "origin": "elsewhere/log"}, signer.vkey, Check.ORIGIN)
    fails({**receipt, "checkpoint": "garbage"}, signer.vkey, Check.CHECKPOINT)
    fails(receipt, "not a vkey", Check.VKEY)
    for broken in ({**receipt, "format": "v0"}, {**receipt, "entries": []}, {"format": None}):
        fails(broken, signer.vkey, Check.FORMAT)
    t = copy.deepcopy(receipt)
    t["entries"][1]["leaf_hash"] = "not base64"
    assert fails(t, signer.vkey, Check.FORMAT) == 3


def test_consistency_with_an_older_checkpoint(ledger: Ledger, signer: Ed25519NoteSigner) -> None:
    receipt = ledger.receipt(signer)
    older = ledger.checkpoint(signer, 6)
    proof = [b64(h) for h in consistency_proof(6, 13, ledger.tree)]
    verified = verify_receipt(receipt, signer.vkey, older, proof)
    assert verified.older_checkpoint is not None
    assert verified.older_checkpoint.size == 6
    embedded = {**receipt, "consistency": {"from_checkpoint": older, "proof": proof}}
    assert verify_receipt(embedded, signer.vkey).older_checkpoint == verified.older_checkpoint

    forged = [*proof[:-1], b64(bytes(32))]
    fails(receipt, signer.vkey, Check.CONSISTENCY, older_checkpoint=older, consistency_proof=forged)
    fails({**receipt, "consistency": {"from_checkpoint": older, "proof": forged}}, signer.vkey,
          Check.CONSISTENCY)  # fmt: skip
    fails(receipt, signer.vkey, Check.CONSISTENCY, older_checkpoint=older)
    wrong_size = [b64(h) for h in consistency_proof(5, 13, ledger.tree)]
    fails(receipt, signer.vkey, Check.CONSISTENCY, older_checkpoint=older,
          consistency_proof=wrong_size)  # fmt: skip
    # A split view: the same key signed a size-6 tree whose history differs at leaf 4.
    fork = Ledger(rewrite_leaf=4)
    fails(receipt, signer.vkey, Check.CONSISTENCY, older_checkpoint=fork.checkpoint(signer, 6),
          consistency_proof=proof)  # fmt: skip
    impostor = Ed25519NoteSigner.generate(ORIGIN)
    fails(receipt, signer.vkey, Check.OLDER_CHECKPOINT,
          older_checkpoint=ledger.checkpoint(impostor, 6), consistency_proof=proof)  # fmt: skip
    other_log = signer.sign_checkpoint("other/log", 6, ledger.tree(0, 6))
    fails(receipt, signer.vkey, Check.OLDER_CHECKPOINT, older_checkpoint=other_log,
          consistency_proof=proof)  # fmt: skip


def test_tlog_proofs_round_trip_and_verify(ledger: Ledger, signer: Ed25519NoteSigner) -> None:
    receipt = ledger.receipt(signer)
    proofs = tlog_proofs_of_receipt(receipt)
    assert sorted(proofs) == [2, 3, 7, 10, 11]
    text = proofs[7]
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra ")
    assert "\nindex 7\n" in text
    assert text.endswith(receipt["checkpoint"])
    parsed, checkpoint = verify_tlog_proof(text, signer.vkey)
    assert json.loads(parsed.extra)["leaf_index"] == 7
    assert checkpoint.size == 13
    verify_tlog_proof(text, signer.vkey, ledger.leaves[7])
    with pytest.raises(MerkleError):
        verify_tlog_proof(text, signer.vkey, ledger.leaves[8])
    with pytest.raises(CheckpointError):
        verify_tlog_proof(text, Ed25519NoteSigner.generate(ORIGIN).vkey)
    bare = tlog_proof_text(7, [base64.b64decode(h) for h in receipt["entries"][2][
        "inclusion_proof"]], receipt["checkpoint"])  # fmt: skip
    assert parse_tlog_proof(bare).extra == b""
    with pytest.raises(MalformedTlogProofError, match="no extra data"):
        verify_tlog_proof(bare, signer.vkey)


@pytest.mark.parametrize(
    "text",
    [
        "c2sp.org/tlog-proof@v2\nindex 1\n\ncp\n",
        "c2sp.org/tlog-proof@v1\nindex 01\n\ncp\n",
        "c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\ncp\n",
        "c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\ncp\n",
        "c2sp.org/tlog-proof@v1\nindex 1\n",
    ],
)
def test_malformed_tlog_proofs_are_refused(text: str) -> None:
    with pytest.raises(MalformedTlogProofError):
        parse_tlog_proof(text)
