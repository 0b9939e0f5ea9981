"""RFC 9162 section 2.1 Merkle tree math: hashes, tree heads, inclusion and consistency proofs.

Pure functions over 32-byte SHA-256 hashes. Proof generation never needs the whole tree in
memory: it asks a `SubtreeRoot` callable for the few subtree hashes a proof contains, so the
caller decides where they come from (a list, `root_and_inclusion_proof` for one-shot use, or
`domain.merkle_tree.SubtreeCache` over leaf hashes stored in SQL). Verification follows the
RFC's algorithms (2.1.3.2, 2.1.4.2) literally and raises a `MerkleError` subclass naming what
failed; it must never return a value a caller could forget to check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()
"""MTH({}) per RFC 9162: the hash of the empty string, the only valid root of a size-0 tree."""

SubtreeRoot = Callable[[int, int], bytes]
"""`subtree(start, end)` returns MTH(D[start:end]); generators call it O(log n) times."""


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162's MTH split: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes in O(n) hashing.

    Pairing level by level and promoting a lone last node builds the same left-balanced tree
    as the RFC's recursive split, without recursion over a million leaves.
    """
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root_and_inclusion_proof(
    leaf_hashes: Sequence[bytes], leaf_index: int
) -> tuple[bytes, list[bytes]]:
    """The tree head and PATH(leaf_index) in one O(n) pass, for callers that hold every leaf."""
    _check_index(leaf_index, len(leaf_hashes))
    level = list(leaf_hashes)
    index = leaf_index
    proof: list[bytes] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level, index = paired, index >> 1
    return level[0], proof


def inclusion_proof(leaf_index: int, tree_size: int, subtree: SubtreeRoot) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1, leaf's sibling first, root's child last."""
    _check_index(leaf_index, tree_size)
    proof: list[bytes] = []
    start, end = 0, tree_size
    while end - start > 1:
        mid = start + largest_power_of_two_below(end - start)
        if leaf_index < mid:
            proof.append(subtree(mid, end))
            end = mid
        else:
            proof.append(subtree(start, mid))
            start = mid
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeRoot) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1 (SUBPROOF unrolled); empty when the sizes are equal."""
    if not 0 < old_size <= new_size:
        raise TreeSizeError(
            f"a consistency proof needs 0 < old size <= new size, got {old_size} and {new_size}"
        )
    proof: list[bytes] = []
    start, end, m, whole_old_tree = 0, new_size, old_size, True
    while end - start != m:
        k = largest_power_of_two_below(end - start)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start, m, whole_old_tree = start + k, m - k, False
    if not whole_old_tree:
        proof.append(subtree(start, end))
    proof.reverse()
    return proof


def root_from_inclusion_proof(
    leaf: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that `proof` implies for `leaf` at `leaf_index` (RFC 9162 2.1.3.2 steps 1-4)."""
    _check_index(leaf_index, tree_size)
    _check_hash("leaf hash", leaf)
    want = _inclusion_proof_length(leaf_index, tree_size)
    if len(proof) != want:
        raise ProofLengthError(
            f"inclusion proof for leaf {leaf_index} in a tree of {tree_size} has "
            f"{len(proof)} hashes, needs {want}"
        )
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for i, p in enumerate(proof):
        _check_hash(f"inclusion proof hash {i}", p)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r


def verify_inclusion(
    leaf: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raises unless `proof` shows `leaf` at `leaf_index` in the tree of `tree_size` with `root`."""
    computed = root_from_inclusion_proof(leaf, leaf_index, tree_size, proof)
    if computed != root:
        raise RootMismatchError(
            f"inclusion proof for leaf {leaf_index} leads to root {computed.hex()}, "
            f"the tree head of size {tree_size} says {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raises unless `proof` shows the tree (`old_size`, `old_root`) is a prefix of the newer one.

    Size 0 is strict: the empty tree has exactly one root, EMPTY_ROOT, and a proof from it to a
    non-empty tree is refused as meaningless (every tree extends the empty one).
    """
    if old_size < 0 or new_size < old_size:
        raise TreeSizeError(f"old size {old_size} is not between 0 and new size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofLengthError(f"trees of equal size {old_size} need an empty proof")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise RootMismatchError("a tree of size 0 must have the empty root")
        if old_root != new_root:
            raise RootMismatchError(f"two tree heads of size {old_size} have different roots")
        return
    if old_size == 0:
        raise TreeSizeError("a consistency proof from the empty tree is meaningless")
    _check_hash("old root", old_root)
    shift = (old_size & -old_size).bit_length() - 1
    seeded = old_size == 1 << shift
    want = _inclusion_proof_length((old_size - 1) >> shift, ((new_size - 1) >> shift) + 1)
    want += 0 if seeded else 1
    if len(proof) != want:
        raise ProofLengthError(
            f"consistency proof from {old_size} to {new_size} has {len(proof)} hashes, needs {want}"
        )
    for i, p in enumerate(proof):
        _check_hash(f"consistency proof hash {i}", p)
    path = [old_root, *proof] if seeded else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if fr != old_root:
        raise RootMismatchError(
            f"consistency proof from {old_size} to {new_size} leads to old root {fr.hex()}, "
            f"the tree head says {old_root.hex()}"
        )
    if sr != new_root:
        raise RootMismatchError(
            f"consistency proof from {old_size} to {new_size} leads to new root {sr.hex()}, "
            f"the tree head says {new_root.hex()}"
        )


def _inclusion_proof_length(index: int, size: int) -> int:
    # Below the level where the paths to `index` and to the last leaf split, every level has a
    # sibling; above it, only the levels where `index` is a right child do.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _check_index(leaf_index: int, tree_size: int) -> None:
    if not 0 <= leaf_index < tree_size:
        raise TreeSizeError(f"leaf index {leaf_index} is not in a tree of size {tree_size}")


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise HashLengthError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


class MerkleError(ValueError):
    """A Merkle tree operation or proof check that failed; the message names what failed."""


class TreeSizeError(MerkleError):
    """A leaf index or tree size outside what the tree or proof can describe."""


class HashLengthError(MerkleError):
    """A leaf hash, root or proof element that is not a 32-byte SHA-256 hash."""


class ProofLengthError(MerkleError):
    """A proof with more or fewer hashes than the tree sizes require."""


class RootMismatchError(MerkleError):
    """A proof that is well formed but leads to a root other than the one claimed."""
