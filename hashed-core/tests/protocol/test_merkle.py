"""The Merkle tree against the RFC 6962 definitions written out naively, on random sizes and indexes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashed.errors import ProofError
from hashed.protocol import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodeStore,
    consistency_proof,
    hash_children,
    inclusion_proof,
    leaf_hash,
    root_at,
    verify_consistency,
    verify_inclusion,
)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(b"record %d" % i) for i in range(n)]


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1, as written."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return hash_children(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), as written."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 6962 §2.1.2 SUBPROOF(m, D[n], b), as written."""
    if m == len(leaves):
        return [] if whole else [mth(leaves)]
    k = _split(len(leaves))
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def _store(n: int) -> MemoryNodeStore:
    store = MemoryNodeStore()
    store.extend(_leaves(n))
    return store


def _flip(proof: list[bytes], item: int, bit: int) -> list[bytes]:
    changed = bytearray(proof[item])
    changed[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:item], bytes(changed), *proof[item + 1 :]]


@st.composite
def size_and_index(draw):
    size = draw(st.integers(1, 300))
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw):
    size2 = draw(st.integers(1, 300))
    return draw(st.integers(1, size2)), size2


@given(st.integers(0, 300))
def test_compact_range_root_equals_the_recursive_root(size):
    leaves = _leaves(size)
    tree = CompactRange()
    tree.extend(leaves)
    assert tree.root() == mth(leaves)
    assert len(tree.hashes) == bin(size).count("1")


@given(st.integers(0, 200))
def test_the_store_keeps_about_two_hashes_per_leaf_and_any_earlier_root(size):
    store = _store(size)
    assert len(store.nodes) == 2 * size - bin(size).count("1")
    for earlier in {0, size // 3, size // 2, size}:
        assert root_at(store, earlier) == mth(_leaves(earlier))
    reloaded = CompactRange.load(store, size)
    assert reloaded.root() == store.root()


@settings(max_examples=200)
@given(size_and_index(), st.data())
def test_every_inclusion_proof_verifies_and_any_flipped_bit_fails(case, data):
    size, index = case
    leaves = _leaves(size)
    store = _store(size)
    proof = inclusion_proof(store, index, size)
    assert proof == path(index, leaves)
    root = store.root()
    verify_inclusion(leaves[index], index, size, proof, root)
    if proof:
        item = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, _flip(proof, item, bit), root)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(ProofError):
        verify_inclusion(_flip([leaves[index]], 0, bit)[0], index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, size, proof, _flip([root], 0, bit)[0])


@settings(max_examples=200)
@given(two_sizes(), st.data())
def test_every_consistency_proof_verifies_and_any_flipped_bit_fails(sizes, data):
    size1, size2 = sizes
    leaves = _leaves(size2)
    store = _store(size2)
    proof = consistency_proof(store, size1, size2)
    assert proof == subproof(size1, leaves, True)
    root1, root2 = mth(leaves[:size1]), store.root()
    verify_consistency(size1, size2, root1, root2, proof)
    bit = data.draw(st.integers(0, 255))
    if proof:
        item = data.draw(st.integers(0, len(proof) - 1))
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, _flip(proof, item, bit))
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, _flip([root1], 0, bit)[0], root2, proof)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, root1, _flip([root2], 0, bit)[0], proof)


@given(two_sizes())
def test_a_rewritten_prefix_is_not_consistent(sizes):
    size1, size2 = sizes
    leaves = _leaves(size2)
    forked = [*leaves[: size1 - 1], leaf_hash(b"rewritten"), *leaves[size1:]]
    store = MemoryNodeStore()
    store.extend(forked)
    proof = consistency_proof(store, size1, size2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, mth(leaves[:size1]), store.root(), proof)


def test_the_empty_tree_and_bad_arguments():
    assert CompactRange().root() == EMPTY_ROOT == root_at(MemoryNodeStore(), 0)
    store = _store(5)
    with pytest.raises(ValueError, match="not in a tree of size 5"):
        inclusion_proof(store, 5, 5)
    with pytest.raises(ValueError, match="needs 0 < size1"):
        consistency_proof(store, 0, 5)
    with pytest.raises(LookupError):
        inclusion_proof(store, 0, 9)  # the store has only reached size 5
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange().append(b"short")
