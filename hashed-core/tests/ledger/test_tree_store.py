"""The SQLite tree store: proofs equal the in-memory tree's, state survives reopening and rollbacks."""

from __future__ import annotations

import sqlite3

import pytest

from hashed.ledger._tree_store import SqliteTreeStore
from hashed.protocol import (
    MemoryNodeStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)


def _leaves(start: int, stop: int) -> list[bytes]:
    return [leaf_hash(b"record %d" % i) for i in range(start, stop)]


def test_appends_in_groups_give_the_same_tree_and_proofs_as_memory(tmp_path):
    conn = sqlite3.connect(tmp_path / "tree.db")
    tree = SqliteTreeStore(conn)
    memory = MemoryNodeStore()
    for start, stop in [(0, 1), (1, 33), (33, 100), (100, 1000)]:
        with conn:
            tree.append(_leaves(start, stop))
        memory.extend(_leaves(start, stop))
    assert tree.size == 1000 and tree.root() == memory.root()
    rows = conn.execute("SELECT count(*) FROM merkle_nodes").fetchone()[0]
    assert rows == 2 * 1000 - bin(1000).count("1")
    for index, size in [(0, 1), (499, 1000), (999, 1000), (3, 77)]:
        proof = tree.inclusion_proof(index, size)
        assert proof == inclusion_proof(memory, index, size)
        verify_inclusion(_leaves(index, index + 1)[0], index, size, proof, tree.root_at(size))
    for size1, size2 in [(1, 1000), (77, 1000), (512, 1000), (1000, 1000)]:
        proof = tree.consistency_proof(size1, size2)
        assert proof == consistency_proof(memory, size1, size2)
        verify_consistency(size1, size2, tree.root_at(size1), tree.root_at(size2), proof)


def test_a_reopened_store_continues_where_it_stopped(tmp_path):
    with sqlite3.connect(tmp_path / "tree.db") as conn:
        SqliteTreeStore(conn).append(_leaves(0, 37))
    conn = sqlite3.connect(tmp_path / "tree.db")
    tree = SqliteTreeStore(conn)
    assert tree.size == 37
    with conn:
        tree.append(_leaves(37, 64))
    memory = MemoryNodeStore()
    memory.extend(_leaves(0, 64))
    assert tree.root() == memory.root()


def test_a_rolled_back_append_is_forgotten_after_reload(tmp_path):
    conn = sqlite3.connect(tmp_path / "tree.db")
    tree = SqliteTreeStore(conn)
    with conn:
        tree.append(_leaves(0, 10))
    root = tree.root()

    def failing_transaction():
        with conn:
            tree.append(_leaves(10, 20))
            conn.execute("INSERT INTO merkle_nodes VALUES (0, 0, x'00')")  # the writer's transaction fails

    with pytest.raises(sqlite3.IntegrityError):
        failing_transaction()
    tree.reload()
    assert (tree.size, tree.root()) == (10, root)
    with pytest.raises(ValueError, match="has 10 leaves, not 11"):
        tree.inclusion_proof(0, 11)
    with pytest.raises(ValueError, match="32 bytes"):
        tree.append([b"short"])
    assert tree.size == 10
