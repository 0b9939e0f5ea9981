"""The ledger's hash chain: each link commits to the previous link and to one leaf hash.

chain_hash[i] = SHA-256(chain_hash[i-1] || leaf_hash[i]), chain_hash[-1] = 32 zero bytes.
The Merkle tree is what checkpoints sign and proofs use; the chain is a second, sequential
commitment that lets an auditor holding a run of `ledger_entries` rows check them link by link
without rebuilding any tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

HASH_SIZE = 32
GENESIS = bytes(HASH_SIZE)
"""chain_hash[-1]: what the link of leaf 0 chains from."""


def chain_hash(prev_chain_hash: bytes, leaf_hash: bytes) -> bytes:
    _check("previous chain hash", prev_chain_hash)
    _check("leaf hash", leaf_hash)
    return sha256(prev_chain_hash + leaf_hash).digest()


def extend_chain(prev_chain_hash: bytes, leaf_hashes: Iterable[bytes]) -> list[bytes]:
    """The chain hashes of the next leaves, continuing from `prev_chain_hash`."""
    links: list[bytes] = []
    current = prev_chain_hash
    for leaf in leaf_hashes:
        current = chain_hash(current, leaf)
        links.append(current)
    return links


def verify_chain(
    prev_chain_hash: bytes,
    leaf_hashes: Sequence[bytes],
    chain_hashes: Sequence[bytes],
    start_index: int = 0,
) -> None:
    """Raises unless `chain_hashes` are the links of `leaf_hashes` from `prev_chain_hash`.

    `start_index` is the leaf index of the first leaf, used only to name a broken link; a run
    starting at leaf 0 must chain from GENESIS.
    """
    if len(leaf_hashes) != len(chain_hashes):
        raise ChainError(f"{len(leaf_hashes)} leaf hashes but {len(chain_hashes)} chain hashes")
    if start_index == 0 and prev_chain_hash != GENESIS:
        raise BrokenLinkError(0, "leaf 0 must chain from 32 zero bytes")
    current = prev_chain_hash
    for offset, (leaf, link) in enumerate(zip(leaf_hashes, chain_hashes, strict=True)):
        expected = chain_hash(current, leaf)
        if link != expected:
            raise BrokenLinkError(
                start_index + offset,
                f"chain hash of leaf {start_index + offset} is {link.hex()}, "
                f"SHA-256(previous link || leaf hash) is {expected.hex()}",
            )
        current = link


def _check(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ChainError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


class ChainError(ValueError):
    """A hash chain that cannot be checked or does not hold."""


class BrokenLinkError(ChainError):
    """A chain hash that is not SHA-256(previous chain hash || leaf hash)."""

    def __init__(self, leaf_index: int, message: str) -> None:
        super().__init__(message)
        self.leaf_index = leaf_index
