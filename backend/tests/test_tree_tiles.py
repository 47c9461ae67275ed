"""The backend's Merkle tree in tiles: every node of every size is there, whatever the batches and the process.

Plans and writes the tree as ingest does (`plan_tree`, then its statements through `execute_all`, pipelined on
PostgreSQL; one write transaction per batch; the tree remembered between batches, or not: a new process, another
replica that moved the head), on SQLite and PostgreSQL, against the in-memory tree of `hashed.protocol`.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from nacl.signing import SigningKey
from sqlalchemy import create_engine, func, select

from hashed import Identity
from hashed.protocol import (
    Checkpoint,
    MemoryNodeStore,
    agent_origin,
    consistency_proof,
    inclusion_proof,
    open_checkpoint,
    root_at,
    sign_checkpoint,
)
from hashed_backend.db.models import Base, MerkleTile, Tree
from hashed_backend.db.session import execute_all
from hashed_backend.services.checkpoints import BackendSigner
from hashed_backend.services.tree import SqlNodeStore, TreeState, plan_ahead, plan_tree, tree_after


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("throwaway_pg").replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        url = f"sqlite:///{tmp_path / 'tree.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine, tables=[MerkleTile.__table__, Tree.__table__])
    yield engine
    engine.dispose()


def test_tiles_hold_every_node_whatever_the_batches_and_whoever_remembers_the_tree(engine):
    rng = random.Random(6962)  # noqa: S311 - a repeatable schedule of batches, not a secret
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(800)]  # past 512: three tile levels
    key = Identity.generate().public_key
    expected = MemoryNodeStore()
    states: list[TreeState | None] = [None]
    size = 0
    while size < len(leaves):
        batch = leaves[size : size + rng.choice([1, 2, 3, 15, 16, 17, 31, 100])]
        # Usually the tree this process committed last; sometimes none (a new process) or an older one (another
        # replica moved the head since): both read it back from the database.
        state = rng.choices([states[-1], None, rng.choice(states)], weights=[6, 2, 2])[0]
        with engine.begin() as conn:
            step = plan_tree(conn, "org", "agent", size, key, [{"hash": h.hex()} for h in batch], None, 0, state)
            assert step is not None
            after = tree_after(step, execute_all(conn, step.steps), "agent")
        assert after is not None
        states.append(after)
        size += len(batch)
        expected.extend(batch)
        assert after.size == size
        with engine.connect() as conn:
            assert root_at(SqlNodeStore(conn, "agent"), size) == expected.root()
    with engine.connect() as conn:
        store = SqlNodeStore(conn, "agent")
        every = [(level, idx) for level in range(size.bit_length()) for idx in range(size >> level)]
        assert store.get_nodes(every) == expected.get_nodes(every)
        for old in (1, 15, 16, 17, 255, 256, 513, size - 1):
            assert consistency_proof(store, old, size) == consistency_proof(expected, old, size)
            assert inclusion_proof(store, old, size) == inclusion_proof(expected, old, size)
        with pytest.raises(LookupError):  # a node the tree has not completed is not made up
            store.get_nodes([(4, size >> 4)])
        # 16 hashes a row: the leaves, every 16th level-4 node, …, not one row per node.
        tiles = conn.execute(select(func.count()).select_from(MerkleTile.__table__)).scalar()
        assert tiles == sum(-(-(size >> level) // 16) for level in (0, 4, 8) if size >> level)


def test_a_batch_of_many_tiles_and_its_checkpoint_are_those_of_the_rfc6962_tree(engine):
    # 600 leaves after 5: 38 tiles of leaves and 3 of level 4, so more than one upsert statement (16 tiles each).
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(605)]
    signer = BackendSigner(SigningKey(bytes(range(32))))
    key = Identity.generate().public_key
    expected = MemoryNodeStore()
    state = None
    for batch in (leaves[:5], leaves[5:]):
        with engine.begin() as conn:
            step = plan_tree(
                conn, "org", "agent", expected.size, key, [{"hash": h.hex()} for h in batch], signer, 9, state
            )
            assert step is not None
            state = tree_after(step, execute_all(conn, step.steps), "agent")
        expected.extend(batch)
    assert state is not None and state.size == 605 and len(step.steps) == 1 + 3
    with engine.connect() as conn:
        store = SqlNodeStore(conn, "agent")
        every = [(level, idx) for level in range(10) for idx in range(605 >> level)]
        assert store.get_nodes(every) == expected.get_nodes(every)
        row = conn.execute(select(Tree.size, Tree.compact, Tree.note, Tree.signed_ns)).one()
    checkpoint = Checkpoint(agent_origin(key), 605, expected.root())
    assert row.note == sign_checkpoint(checkpoint, signer, signer.name)  # the core's note, byte for byte
    assert open_checkpoint(row.note, [signer.verifier]).checkpoint == checkpoint
    assert (row.size, row.compact, row.signed_ns) == (605, b"".join(expected.tree.hashes), 9)


# Batches ending at, just before and just after tile boundaries (16 leaves, 256, 4,096) and powers of two, so that
# a batch completes, fills or starts a tile at every tile level, carries through many levels at once (4,095 + 1)
# or completes nothing above its first levels (where `_grow` stops walking up and keeps the old compact range).
_BOUNDARY_SIZES = [1, 2, 15, 16, 17, 31, 32, 33, 255, 256, 257, 272, 511, 512, 513, 4095, 4096, 4097, 4111, 4112, 4400]


def test_tiles_and_compact_range_at_and_around_tile_boundaries(engine):
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(_BOUNDARY_SIZES[-1])]
    key = Identity.generate().public_key
    expected = MemoryNodeStore()
    state = None
    size = 0
    for end in _BOUNDARY_SIZES:
        batch = leaves[size:end]
        with engine.begin() as conn:
            step = plan_tree(conn, "org", "agent", size, key, [{"hash": h.hex()} for h in batch], None, 0, state)
            assert step is not None
            state = tree_after(step, execute_all(conn, step.steps), "agent")
        expected.extend(batch)
        size = end
        assert state is not None and state.size == size
        assert state.compact == tuple(expected.tree.hashes)  # the compact range, largest subtree first
        assert state.root() == expected.root()
        for level, count in ((0, size), (1, size >> 4), (2, size >> 8), (3, size >> 12)):
            if count % 16:  # the rightmost partial tile of each level is remembered, whole
                tile_level = level * 4
                first = count - count % 16
                want = b"".join(expected.get_nodes([(tile_level, i) for i in range(first, count)]))
                assert state.edges[level] == want
            else:
                assert level not in state.edges
        with engine.connect() as conn:
            store = SqlNodeStore(conn, "agent")
            every = [(level, idx) for level in range(size.bit_length()) for idx in range(size >> level)]
            assert store.get_nodes(every) == expected.get_nodes(every)
            for old in sorted({1, max(1, size // 2), max(1, size - 1), size}):
                assert consistency_proof(store, old, size) == consistency_proof(expected, old, size)
                assert inclusion_proof(store, old - 1, size) == inclusion_proof(expected, old - 1, size)


def test_a_tree_planned_ahead_is_the_one_planned_in_the_transaction(engine):
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(300)]
    signer = BackendSigner(SigningKey(bytes(range(32))))
    key = Identity.generate().public_key
    records = [{"hash": h.hex()} for h in leaves]
    with engine.begin() as conn:
        first = plan_tree(conn, "org", "agent", 0, key, records[:17], signer, 5)
        assert first is not None
        state = tree_after(first, execute_all(conn, first.steps), "agent")
    assert state is not None
    # Not the tree at the batch's start (never seen, or another replica moved it since): planned in the transaction.
    assert plan_ahead("org", "agent", 17, records[17:], signer, 6, None) is None
    assert plan_ahead("org", "agent", 16, records[16:], signer, 6, state) is None
    assert plan_ahead("org", "agent", 17, [], signer, 6, state) is None
    ahead = plan_ahead("org", "agent", 17, records[17:], signer, 6, state)
    with engine.begin() as conn:
        inside = plan_tree(conn, "org", "agent", 17, key, records[17:], signer, 6, state)
        read_back = plan_tree(conn, "org", "agent", 17, key, records[17:], signer, 6, None)
    assert ahead is not None and ahead == inside == read_back  # the same statements, parameters and tree after
