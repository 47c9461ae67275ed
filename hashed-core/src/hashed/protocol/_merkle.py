"""The RFC 6962 / RFC 9162 Merkle tree over an agent's records: hashing, compact ranges, proofs.

    leaf  = SHA-256(0x00 || canonical record bytes)    (the record's `hash`, see `leaf_hash`)
    node  = SHA-256(0x01 || left || right)
    MTH(n leaves) splits at the largest power of two below n; MTH(no leaves) = SHA-256("")

The tree is kept as *complete subtrees*: the node at (level, index) is the root of leaves
[index·2^level, (index+1)·2^level). Those never change once complete, so a store that keeps every one of them
(≈ 2 hashes per leaf) can answer an inclusion or consistency proof for any tree size it has reached, reading
O(log n) nodes. A `CompactRange` is the tree's state in O(log n) hashes: appending a leaf is amortised O(1) and
reports the nodes it completed (what a store writes). Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 and
is checked against the transparency-dev/merkle vectors (tests/protocol/rfc6962/).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from hashed.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "MemoryNodeStore",
    "Node",
    "NodeStore",
    "consistency_proof",
    "hash_children",
    "inclusion_proof",
    "root_at",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_SIZE = 32
_NODE_PREFIX = b"\x01"

Node = tuple[int, int, bytes]
"""A complete subtree: (level, index, hash); level 0 holds the leaf hashes."""


def hash_children(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 interior node over two subtree hashes."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


class NodeStore(Protocol):
    """Where complete subtree hashes live (memory, a ledger's SQLite file, the backend's database)."""

    def get_nodes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        """The hashes at these (level, index) coordinates, in order; LookupError if one is not stored."""
        ...


class CompactRange:
    """The tree of leaves [0, size) as its perfect subtrees, largest first (one per set bit of `size`).

    Example:
        >>> tree = CompactRange()
        >>> [len(tree.append(bytes(32))) for _ in range(4)]   # nodes each leaf completes
        [1, 2, 1, 3]
        >>> tree.size, len(tree.hashes)
        (4, 1)
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} perfect subtrees, not {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)

    @classmethod
    def load(cls, store: NodeStore, size: int) -> CompactRange:
        """The compact range of the first `size` leaves, read from a store (one batch)."""
        return cls(size, store.get_nodes(_decompose(0, size)))

    def append(self, leaf: bytes) -> list[Node]:
        """Add one leaf hash; returns the complete subtrees it finished, the leaf itself first."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf)}")
        index, node, level = self.size, leaf, 0
        done = [(0, index, leaf)]
        while (index >> level) & 1:  # the right child of a pair: merge with the left sibling
            node = hash_children(self.hashes.pop(), node)
            level += 1
            done.append((level, index >> level, node))
        self.hashes.append(node)
        self.size += 1
        return done

    def extend(self, leaves: Iterable[bytes]) -> list[Node]:
        """Add leaf hashes in order; returns every complete subtree they finished."""
        done: list[Node] = []
        for leaf in leaves:
            done.extend(self.append(leaf))
        return done

    def root(self) -> bytes:
        """MTH of the leaves so far (SHA-256 of nothing for an empty tree)."""
        return _fold(self.hashes)

    def copy(self) -> CompactRange:
        """An independent copy (to try appends that may be rolled back)."""
        return CompactRange(self.size, self.hashes)


class MemoryNodeStore:
    """Every complete subtree in a dict: for tests, tools and trees rebuilt from an export.

    Example:
        >>> store = MemoryNodeStore()
        >>> store.extend([bytes([i]) * 32 for i in range(5)])
        >>> verify_inclusion(bytes([3]) * 32, 3, 5, inclusion_proof(store, 3, 5), store.root())
    """

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.tree = CompactRange()

    @property
    def size(self) -> int:
        """How many leaves the store holds."""
        return self.tree.size

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append leaf hashes."""
        for level, index, node in self.tree.extend(leaves):
            self.nodes[level, index] = node

    def root(self) -> bytes:
        """The root over every leaf held."""
        return self.tree.root()

    def get_nodes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        """See `NodeStore`."""
        return [self.nodes[coord] for coord in coords]


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The root of adjacent perfect subtrees given largest first: H(h0, H(h1, … H(h[-2], h[-1])))."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for node in reversed(hashes[:-1]):
        root = hash_children(node, root)
    return root


def _decompose(lo: int, hi: int) -> list[tuple[int, int]]:
    """The perfect subtrees of [lo, hi), largest first; lo is aligned to a power of two ≥ hi - lo."""
    coords = []
    for level in reversed(range((hi - lo).bit_length())):
        if (hi - lo) >> level & 1:
            coords.append((level, lo >> level))
            lo += 1 << level
    return coords


def _largest_power_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_hashes(store: NodeStore, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """MTH of each range, reading all the nodes they need in one batch."""
    parts = [_decompose(lo, hi) for lo, hi in ranges]
    wanted = sorted({coord for part in parts for coord in part})
    found = dict(zip(wanted, store.get_nodes(wanted), strict=True))
    return [_fold([found[coord] for coord in part]) for part in parts]


def root_at(store: NodeStore, size: int) -> bytes:
    """The root the tree had at `size` leaves (any size the store has reached)."""
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    return _subtree_hashes(store, [(0, size)])[0] if size else EMPTY_ROOT


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """RFC 6962 PATH(index, D[size]): sibling hashes from the leaf up, O(log size) nodes read."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return _subtree_hashes(store, ranges[::-1])


def consistency_proof(store: NodeStore, size1: int, size2: int) -> list[bytes]:
    """RFC 6962 PROOF(size1, D[size2]); empty when the sizes are equal. Needs 0 < size1 ≤ size2."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2} (needs 0 < size1 ≤ size2)")
    ranges = []
    lo, hi, m, whole = 0, size2, size1, True  # SUBPROOF(m, D[lo:hi], whole), unrolled
    while m != hi - lo:
        k = _largest_power_below(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        ranges.append((lo, hi))
    return _subtree_hashes(store, ranges[::-1])


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).

    Raises:
        ProofError: the proof does not show it (the message says why).
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for number, p in enumerate(proof):
        _check_hash(p, f"proof hash {number}")
        if sn == 0:
            raise ProofError(f"the proof has {len(proof)} hashes, more than a tree of size {size} needs")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"the proof has {len(proof)} hashes, fewer than a tree of size {size} needs")
    if r != root:
        raise ProofError(f"the proof leads to root {r.hex()[:16]}…, not {root.hex()[:16]}…")


def _trivially_consistent(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> bool:
    """The cases decided without hashing: True when the sizes are equal and the roots match; else raise or False."""
    if size1 > size2:
        raise ProofError(f"size {size1} is larger than size {size2}: a log never shrinks")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}")
        return True
    if not proof:
        raise ProofError(f"an empty proof cannot link size {size1} to size {size2}")
    return False


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree (size1, root1) is a prefix of the tree (size2, root2) (RFC 9162 §2.1.4.2).

    A proof from the empty tree proves nothing and is refused, as in transparency-dev/merkle (a witness treats
    `old 0` as first sight instead). Equal sizes need an empty proof and equal roots.

    Raises:
        ProofError: the proof does not show it (the message says why).
    """
    if _trivially_consistent(size1, size2, root1, root2, proof):
        return
    for number, p in enumerate(proof):
        _check_hash(p, f"proof hash {number}")
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"the proof has {len(proof)} hashes, more than sizes {size1} → {size2} need")
        if fn & 1 or fn == sn:
            fr, sr = hash_children(c, fr), hash_children(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"the proof has {len(proof)} hashes, fewer than sizes {size1} → {size2} need")
    if fr != root1:
        raise ProofError(f"the proof does not lead to the first root (size {size1}): history was changed")
    if sr != root2:
        raise ProofError(f"the proof does not lead to the second root (size {size2})")
