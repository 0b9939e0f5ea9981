"""RFC 9162 Merkle math: the published vectors, and every proof of every tree up to 128 leaves
against a naive recursive transcription of the RFC's definitions."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from domain.merkle import (
    EMPTY_ROOT,
    HashLengthError,
    MerkleError,
    ProofLengthError,
    RootMismatchError,
    TreeSizeError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_and_inclusion_proof,
    root_from_inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from domain.merkle_tree import CompactRange, SubtreeCache, frontier_keys

VECTORS = Path(__file__).resolve().parents[2] / "data" / "rfc9162-vectors"
if not VECTORS.is_dir():
    raise FileNotFoundError(f"RFC 9162 test vectors missing: expected them at {VECTORS}")
INCLUSION_FILES = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY_FILES = sorted((VECTORS / "consistency").rglob("*.json"))

MAX = 128
LEAVES = [leaf_hash(f"leaf {i}".encode()) for i in range(MAX)]
_memo: dict[tuple[int, int], bytes] = {}


def naive_mth(start: int, end: int) -> bytes:
    """MTH(D[start:end]) exactly as RFC 9162 2.1.1 defines it (memoised: leaves are fixed)."""
    if (start, end) not in _memo:
        n = end - start
        if n == 0:
            result = sha256(b"").digest()
        elif n == 1:
            result = LEAVES[start]
        else:
            k = 1
            while k * 2 < n:
                k *= 2
            result = sha256(
                b"\x01" + naive_mth(start, start + k) + naive_mth(start + k, end)
            ).digest()
        _memo[start, end] = result
    return _memo[start, end]


def naive_path(m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]) of RFC 9162 2.1.3.1, m relative to start."""
    n = end - start
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*naive_path(m, start, start + k), naive_mth(start + k, end)]
    return [*naive_path(m - k, start + k, end), naive_mth(start, start + k)]


def naive_subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) of RFC 9162 2.1.4.1."""
    n = end - start
    if m == n:
        return [] if whole else [naive_mth(start, end)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*naive_subproof(m, start, start + k, whole), naive_mth(start + k, end)]
    return [*naive_subproof(m - k, start + k, end, False), naive_mth(start, start + k)]


def b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def hashes(values: Sequence[str] | None) -> list[bytes]:
    return [b64(v) for v in values or []]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_vectors_are_all_there() -> None:
    assert len(INCLUSION_FILES) >= 90
    assert len(CONSISTENCY_FILES) >= 90


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(path: Path) -> None:
    case = load(path)
    args = (b64(case["leafHash"]), case["leafIdx"], case["treeSize"], hashes(case["proof"]))
    if case["wantErr"]:
        with pytest.raises(MerkleError):
            verify_inclusion(*args, b64(case["root"]))
    else:
        verify_inclusion(*args, b64(case["root"]))


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(path: Path) -> None:
    case = load(path)
    args = (case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(MerkleError):
            verify_consistency(*args, hashes(case["proof"]))
    else:
        verify_consistency(*args, hashes(case["proof"]))


def test_known_roots_of_the_rfc_tree() -> None:
    # The 8-leaf tree of the RFC 6962 / transparency-dev test data, whose root the vectors use.
    data = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    leaves = [leaf_hash(bytes.fromhex(d)) for d in data]
    assert base64.b64encode(root_of(leaves)).decode() == (
        "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="
    )
    assert root_of([]) == EMPTY_ROOT == sha256(b"").digest()
    assert root_of(leaves[:1]) == leaves[0] == sha256(b"\x00").digest()
    assert node_hash(leaves[0], leaves[1]) == sha256(b"\x01" + leaves[0] + leaves[1]).digest()


@pytest.mark.parametrize("n", range(1, MAX + 1))
def test_every_inclusion_proof_of_a_tree(n: int) -> None:
    root = naive_mth(0, n)
    cache = SubtreeCache(lambda s, e: LEAVES[s:e], min_level=2)
    assert root_of(LEAVES[:n]) == root
    assert cache(0, n) == root
    for m in range(n):
        want = naive_path(m, 0, n)
        assert inclusion_proof(m, n, naive_mth) == want
        assert inclusion_proof(m, n, cache) == want
        assert root_and_inclusion_proof(LEAVES[:n], m) == (root, want)
        verify_inclusion(LEAVES[m], m, n, want, root)
        with pytest.raises(MerkleError):
            verify_inclusion(LEAVES[m], m, n, want, LEAVES[m] if n > 1 else EMPTY_ROOT)
        if n > 1:
            with pytest.raises(MerkleError):
                verify_inclusion(LEAVES[m], (m + 1) % n, n, want, root)
            with pytest.raises(MerkleError):
                verify_inclusion(LEAVES[(m + 1) % n], m, n, want, root)
            forged = [*want[:-1], bytes(32)]
            with pytest.raises(RootMismatchError):
                verify_inclusion(LEAVES[m], m, n, forged, root)


@pytest.mark.parametrize("n", range(1, MAX + 1))
def test_every_consistency_proof_into_a_tree(n: int) -> None:
    root = naive_mth(0, n)
    cache = SubtreeCache(lambda s, e: LEAVES[s:e], min_level=1)
    for m in range(1, n + 1):
        want = naive_subproof(m, 0, n, True)
        assert consistency_proof(m, n, naive_mth) == want
        assert consistency_proof(m, n, cache) == want
        old_root = naive_mth(0, m)
        verify_consistency(m, n, old_root, root, want)
        if m < n:
            with pytest.raises(RootMismatchError):
                verify_consistency(m, n, sha256(b"another tree").digest(), root, want)
            with pytest.raises(RootMismatchError):
                verify_consistency(m, n, old_root, old_root, want)
            forged = [bytes(32), *want[1:]]
            with pytest.raises(RootMismatchError):
                verify_consistency(m, n, old_root, root, forged)
            with pytest.raises(ProofLengthError):
                verify_consistency(m, n, old_root, root, want[:-1])


def test_inclusion_boundaries() -> None:
    verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    for n in (2, 3, 5, 7, 64, 65, 127):
        root = naive_mth(0, n)
        verify_inclusion(LEAVES[n - 1], n - 1, n, naive_path(n - 1, 0, n), root)
        with pytest.raises(TreeSizeError, match=f"leaf index {n} is not in a tree of size {n}"):
            verify_inclusion(LEAVES[0], n, n, [], root)
    with pytest.raises(TreeSizeError):
        verify_inclusion(LEAVES[0], -1, 4, [], naive_mth(0, 4))
    with pytest.raises(TreeSizeError):
        inclusion_proof(0, 0, naive_mth)
    with pytest.raises(HashLengthError, match="leaf hash is 31 bytes"):
        verify_inclusion(LEAVES[0][:31], 0, 1, [], LEAVES[0])
    with pytest.raises(ProofLengthError, match="has 1 hashes, needs 0"):
        verify_inclusion(LEAVES[0], 0, 1, [LEAVES[1]], LEAVES[0])
    proof = naive_path(5, 0, 7)
    with pytest.raises(HashLengthError, match="inclusion proof hash 1"):
        root_from_inclusion_proof(LEAVES[5], 5, 7, [proof[0], proof[1][:-1], *proof[2:]])


def test_consistency_boundaries() -> None:
    root4 = naive_mth(0, 4)
    verify_consistency(4, 4, root4, root4, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(RootMismatchError):
        verify_consistency(0, 0, root4, root4, [])
    with pytest.raises(TreeSizeError, match="meaningless"):
        verify_consistency(0, 4, EMPTY_ROOT, root4, [])
    with pytest.raises(TreeSizeError):
        verify_consistency(5, 4, root4, root4, [])
    with pytest.raises(ProofLengthError, match="equal size"):
        verify_consistency(4, 4, root4, root4, [root4])
    with pytest.raises(TreeSizeError):
        consistency_proof(0, 4, naive_mth)
    with pytest.raises(TreeSizeError):
        consistency_proof(5, 4, naive_mth)
    assert consistency_proof(4, 4, naive_mth) == []


def test_compact_range_matches_the_tree_and_reports_finished_subtrees() -> None:
    tree = CompactRange()
    assert tree.root() == EMPTY_ROOT
    finished: dict[tuple[int, int], bytes] = {}
    for i, leaf in enumerate(LEAVES):
        for (level, index), node in tree.append(leaf):
            finished[level, index] = node
        assert tree.size == i + 1
        assert tree.root() == naive_mth(0, i + 1)
        stored = [naive_mth(ix << lv, (ix + 1) << lv) for lv, ix in frontier_keys(tree.size)]
        assert CompactRange(tree.size, stored).frontier == tree.frontier
    assert len(finished) == MAX - 1  # a complete tree of 128 leaves has 127 inner nodes
    for (level, index), node in finished.items():
        assert node == naive_mth(index << level, (index + 1) << level)
    with pytest.raises(MerkleError, match="frontier hashes"):
        CompactRange(3, [LEAVES[0]])


def test_subtree_cache_reads_few_leaves_once_warm() -> None:
    n = 1000
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    reads: list[int] = []

    def source(start: int, end: int) -> Sequence[bytes]:
        reads.append(end - start)
        return leaves[start:end]

    store: dict[tuple[int, int], bytes] = {}
    cache = SubtreeCache(source, store, min_level=4)
    root = cache(0, n)
    assert root == root_of(leaves)
    assert all(level >= 4 for level, _ in store)
    reads.clear()
    for m in (0, 1, 499, 998, 999):
        verify_inclusion(leaves[m], m, n, inclusion_proof(m, n, cache), root)
    verify_consistency(333, n, cache(0, 333), root, consistency_proof(333, n, cache))
    # Each proof hashes at most one 16-leaf tile per level below min_level.
    assert sum(reads) <= 6 * 4 * 16


def test_subtree_cache_rejects_bad_sources_and_ranges() -> None:
    cache = SubtreeCache(lambda s, e: LEAVES[s : e - 1])
    with pytest.raises(MerkleError, match="returned 0 hashes for leaves"):
        cache(0, 1)
    with pytest.raises(MerkleError, match="no subtree"):
        SubtreeCache(lambda s, e: LEAVES[s:e])(3, 3)
    with pytest.raises(MerkleError, match="min_level"):
        SubtreeCache(lambda s, e: LEAVES[s:e], min_level=0)
