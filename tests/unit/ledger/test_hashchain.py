"""The ledger hash chain: links from 32 zero bytes, and a broken link is named by leaf index."""

from __future__ import annotations

from hashlib import sha256

import pytest

from domain.hashchain import (
    GENESIS,
    BrokenLinkError,
    ChainError,
    chain_hash,
    extend_chain,
    verify_chain,
)
from domain.merkle import leaf_hash

LEAVES = [leaf_hash(bytes([i])) for i in range(10)]


def test_links_are_sha256_of_previous_link_and_leaf() -> None:
    links = extend_chain(GENESIS, LEAVES)
    assert bytes(32) == GENESIS
    assert links[0] == sha256(bytes(32) + LEAVES[0]).digest()
    for i in range(1, len(LEAVES)):
        assert links[i] == sha256(links[i - 1] + LEAVES[i]).digest()
    assert extend_chain(links[4], LEAVES[5:]) == links[5:]
    assert extend_chain(GENESIS, []) == []


def test_a_run_verifies_from_genesis_and_from_the_middle() -> None:
    links = extend_chain(GENESIS, LEAVES)
    verify_chain(GENESIS, LEAVES, links)
    verify_chain(links[3], LEAVES[4:], links[4:], start_index=4)


def test_a_broken_link_is_named_by_leaf_index() -> None:
    links = extend_chain(GENESIS, LEAVES)
    tampered = [*links[:6], chain_hash(links[5], LEAVES[0]), *links[7:]]
    with pytest.raises(BrokenLinkError, match="chain hash of leaf 6") as info:
        verify_chain(GENESIS, LEAVES, tampered)
    assert info.value.leaf_index == 6
    swapped = [LEAVES[1], LEAVES[0], *LEAVES[2:]]
    with pytest.raises(BrokenLinkError) as info:
        verify_chain(GENESIS, swapped, links)
    assert info.value.leaf_index == 0


def test_leaf_zero_must_chain_from_genesis() -> None:
    links = extend_chain(LEAVES[9], LEAVES)
    with pytest.raises(BrokenLinkError, match="leaf 0 must chain from 32 zero bytes"):
        verify_chain(LEAVES[9], LEAVES, links)


def test_malformed_runs_are_refused() -> None:
    links = extend_chain(GENESIS, LEAVES)
    with pytest.raises(ChainError, match="10 leaf hashes but 9 chain hashes"):
        verify_chain(GENESIS, LEAVES, links[:-1])
    with pytest.raises(ChainError, match="leaf hash is 31 bytes"):
        chain_hash(GENESIS, LEAVES[0][:31])
    with pytest.raises(ChainError, match="previous chain hash is 0 bytes"):
        chain_hash(b"", LEAVES[0])
