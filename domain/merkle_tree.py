"""Growing a big RFC 9162 tree and answering proofs without rehashing it.

Two pieces for the sequencer projection and the receipt endpoint:

- `CompactRange` is the right edge of the tree: O(log n) hashes that give the root at any size
  and absorb one leaf with O(1) amortised hashing. `append` reports every complete subtree it
  finishes, so a projection can store those nodes beside its leaf hashes.
- `SubtreeCache` answers MTH(D[start:end]) from stored leaf hashes plus stored roots of complete,
  aligned power-of-two subtrees. Such a root never changes once its last leaf exists (the log is
  append-only), so caching it is always safe; an inclusion or consistency proof in a million-leaf
  tree then costs O(log n) lookups and a few hundred hashes instead of a million.

Nothing here does I/O: leaf reads and node storage are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence

from domain.merkle import (
    EMPTY_ROOT,
    MerkleError,
    largest_power_of_two_below,
    node_hash,
    root_of,
)

NodeKey = tuple[int, int]
"""(level, index): the complete subtree over leaves [index << level, (index + 1) << level)."""

LeafSource = Callable[[int, int], Sequence[bytes]]
"""`leaves(start, end)` returns the stored leaf hashes D[start:end], exactly end - start of them."""


class CompactRange:
    """The roots of the complete subtrees that make up a tree of `size` leaves, largest first."""

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        """Resume at `size` from the hashes at `frontier_keys(size)`, in that order."""
        if size < 0 or len(frontier) != size.bit_count():
            raise MerkleError(
                f"a tree of size {size} has {max(size, 0).bit_count()} frontier hashes, "
                f"got {len(frontier)}"
            )
        self._size = size
        self._frontier = list(frontier)

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> list[bytes]:
        return list(self._frontier)

    def append(self, leaf: bytes) -> list[tuple[NodeKey, bytes]]:
        """Adds one leaf hash; returns the complete subtrees (level >= 1) it finished, lowest first.

        A new leaf merges with its left neighbour once for every trailing one bit of the old size,
        which is what keeps the amortised cost at one hash per leaf.
        """
        finished: list[tuple[NodeKey, bytes]] = []
        node, level, size = leaf, 0, self._size
        while size & 1:
            node = node_hash(self._frontier.pop(), node)
            level, size = level + 1, size >> 1
            finished.append(((level, (self._size >> level)), node))
        self._frontier.append(node)
        self._size += 1
        return finished

    def root(self) -> bytes:
        if not self._frontier:
            return EMPTY_ROOT
        root = self._frontier[-1]
        for left in reversed(self._frontier[:-1]):
            root = node_hash(left, root)
        return root


def frontier_keys(size: int) -> list[NodeKey]:
    """The complete subtrees, largest first, whose roots a `CompactRange` of `size` holds."""
    keys: list[NodeKey] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


class SubtreeCache:
    """MTH of any leaf range, memoising complete subtrees at or above `min_level`.

    Args:
        leaves: reads stored leaf hashes; called for at most 2**min_level leaves at a time
            once the store is warm.
        store: complete subtree roots by (level, index); a dict, or a mapping over a node table.
            Only levels >= min_level are read or written, which bounds it to 2n / 2**min_level
            entries (about 7,800 for a million leaves at the default 8).
        min_level: below this, hashing the leaves again is cheaper than a lookup.
    """

    def __init__(
        self,
        leaves: LeafSource,
        store: MutableMapping[NodeKey, bytes] | None = None,
        min_level: int = 8,
    ) -> None:
        if min_level < 1:
            raise MerkleError(f"min_level must be at least 1, got {min_level}")
        self._leaves = leaves
        self._store: MutableMapping[NodeKey, bytes] = {} if store is None else store
        self._min_level = min_level

    def __call__(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]), the `SubtreeRoot` that proof generators ask for."""
        if not 0 <= start < end:
            raise MerkleError(f"no subtree over leaves [{start}, {end})")
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.complete(n.bit_length() - 1, start // n)
        k = largest_power_of_two_below(n)
        return node_hash(self(start, start + k), self(start + k, end))

    def complete(self, level: int, index: int) -> bytes:
        """The root of the complete subtree (level, index); its leaves must all exist."""
        if level < self._min_level:
            return root_of(self._read(index << level, (index + 1) << level))
        key = (level, index)
        cached = self._store.get(key)
        if cached is not None:
            return cached
        if level == self._min_level:
            root = root_of(self._read(index << level, (index + 1) << level))
        else:
            root = node_hash(
                self.complete(level - 1, 2 * index), self.complete(level - 1, 2 * index + 1)
            )
        self._store[key] = root
        return root

    def _read(self, start: int, end: int) -> Sequence[bytes]:
        hashes = self._leaves(start, end)
        if len(hashes) != end - start:
            raise MerkleError(
                f"leaf source returned {len(hashes)} hashes for leaves [{start}, {end})"
            )
        return hashes
