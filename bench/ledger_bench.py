"""Micro-benchmark of the ledger math at one million leaves.

Run: .venv/bin/python bench/ledger_bench.py [--leaves N]

Measures what the receipt endpoint and `ainfera receipt verify` pay:
- sequencing: CompactRange.append per leaf, keeping finished subtrees of level >= 8 (the rows a
  projection would store beside its leaf hashes);
- proof building for one leaf from stored leaf hashes + those subtree roots (warm SubtreeCache),
  against a cold cache and against a one-shot O(n) pass;
- offline verification of a 5-entry receipt against a checkpoint of the whole tree;
- then bench/receipt_bench.py: receipt fetch, checkpoint signing and CLI verification against
  a SQLite ledger table of the same size.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

from adapters.jcs import leaf_hash_of_event
from adapters.receipts import verify_receipt
from adapters.signer import Ed25519NoteSigner
from domain.hashchain import GENESIS, extend_chain
from domain.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_and_inclusion_proof,
    verify_inclusion,
)
from domain.merkle_tree import CompactRange, NodeKey, SubtreeCache

ORIGIN = "bench.example/log"
MIN_LEVEL = 8


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Median wall time of `repeat` calls, in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leaves", type=int, default=1_000_000)
    n = parser.parse_args().leaves
    rng = random.Random(7)  # noqa: S311 - reproducible picks, not secrets

    aggregate, positions = uuid4(), sorted(rng.sample(range(n - 2), 3))
    positions = [*positions[:2], positions[2], positions[2] + 1, n - 1]  # two adjacent leaves
    start = time.perf_counter()
    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]
    events = {}
    for version, index in enumerate(positions, start=1):
        events[index] = {
            "leaf_index": index, "aggregate_id": str(aggregate), "version": version,
            "type": "Completed", "tenant_id": "t-bench", "recorded_at": "2025-06-01T00:00:00Z",
            "usage": {"input_tokens": 100, "output_tokens": 200}, "cost_usd": "0.00042",
        }  # fmt: skip
        leaves[index] = leaf_hash_of_event(events[index])
    print(f"{n:,} leaf hashes built in {time.perf_counter() - start:.2f} s")

    store: dict[NodeKey, bytes] = {}
    tree = CompactRange()
    start = time.perf_counter()
    for leaf in leaves:
        for key, node in tree.append(leaf):
            if key[0] >= MIN_LEVEL:
                store[key] = node
    elapsed = time.perf_counter() - start
    root = tree.root()
    print(
        f"sequencing: CompactRange.append {elapsed:.2f} s total, "
        f"{elapsed / n * 1e6:.2f} us/leaf; {len(store):,} subtree roots stored (level >= 8)"
    )

    cache = SubtreeCache(lambda s, e: leaves[s:e], store, min_level=MIN_LEVEL)
    assert cache(0, n) == root
    picks = [rng.randrange(n) for _ in range(200)]
    it = iter(picks * 2)
    warm = timed(lambda: inclusion_proof(next(it), n, cache), repeat=200)
    olds = iter([rng.randrange(1, n) for _ in range(200)])
    cons = timed(lambda: consistency_proof(next(olds), n, cache), repeat=200)
    print(f"inclusion proof, warm cache (stored leaves + subtree roots): {warm * 1e6:.0f} us")
    print(f"consistency proof to {n:,}, warm cache: {cons * 1e6:.0f} us")
    cold = timed(lambda: inclusion_proof(picks[0], n, SubtreeCache(lambda s, e: leaves[s:e])))
    print(f"inclusion proof, cold cache (rehash everything once): {cold:.2f} s")
    one_shot = timed(lambda: root_and_inclusion_proof(leaves, picks[0]))
    print(f"root_and_inclusion_proof one-shot O(n) pass: {one_shot:.2f} s")
    proof = inclusion_proof(picks[0], n, cache)
    verify = timed(lambda: verify_inclusion(leaves[picks[0]], picks[0], n, proof, root), 1000)
    print(f"verify_inclusion ({len(proof)} hashes): {verify * 1e6:.1f} us")

    start = time.perf_counter()
    chain = extend_chain(GENESIS, leaves)
    print(f"hash chain over {n:,} leaves: {time.perf_counter() - start:.2f} s")
    signer = Ed25519NoteSigner.generate(ORIGIN)
    receipt = {
        "format": "ainfera-receipt/v1", "inference_id": f"msg_{aggregate.hex}",
        "origin": ORIGIN, "checkpoint": signer.sign_checkpoint(ORIGIN, n, root),
        "entries": [
            {
                "leaf_index": i, "event": events[i], "leaf_hash": _b64(leaves[i]),
                "prev_chain_hash": _b64(chain[i - 1] if i else GENESIS),
                "chain_hash": _b64(chain[i]),
                "inclusion_proof": [_b64(h) for h in inclusion_proof(i, n, cache)],
            }
            for i in positions
        ],
    }  # fmt: skip
    verify_receipt(receipt, signer.vkey)
    whole = timed(lambda: verify_receipt(receipt, signer.vkey), repeat=200)
    print(f"verify_receipt, 5 entries against a {n:,}-leaf checkpoint: {whole * 1e3:.2f} ms")
    # The same questions asked of the SQL tables the gateway serves receipts from.
    project = Path(__file__).resolve().parent.parent
    subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(project / "bench" / "receipt_bench.py"), "--leaves", str(n)],
        check=True, env={**os.environ, "PYTHONPATH": str(project)}, stderr=subprocess.DEVNULL)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


if __name__ == "__main__":
    main()
