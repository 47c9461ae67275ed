"""Each agent's Merkle tree (docs/protocol.md §8.1), kept as ingest stores records, in the same transaction.

The leaves are the records' hashes in seq order (record `seq` is leaf `seq - 1`). Every complete subtree is one
`merkle_nodes` row (≈ 2 per record), and `trees` holds the tree's compact range (one hash per set bit of its
size), so a batch extends the tree from one row: nothing is ever recomputed from the records. The tree moves in
the transaction that moves the agent's head, so its size is always the head's seq, on every replica.

At each batch the backend signs a checkpoint of the new tree (`trees.note`; one Ed25519 signature per batch,
≈ 25 µs, against the batch's ≈ 100 record signatures verified before it). Proofs read O(log n) nodes
(`SqlNodeStore`) for any size the tree has reached, so they outlive the records retention archives.

An agent whose records were stored before the tree existed and whose chain no longer starts at record 1 in the
database (retention archived its start) has no tree: its records are stored as before, and its proofs answer 404.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, and_, insert, or_, select, update

from hashed.protocol import Checkpoint, CompactRange, agent_origin, sign_checkpoint
from hashed_backend.db.models import MerkleNode, Tree
from hashed_backend.db.session import bulk_insert

if TYPE_CHECKING:
    from hashed_backend.services.checkpoints import BackendSigner

__all__ = ["SqlNodeStore", "extend_tree", "pack", "unpack"]

_log = logging.getLogger("hashed_backend")
_NODES, _TREES = cast(Table, MerkleNode.__table__), cast(Table, Tree.__table__)


def pack(tree: CompactRange) -> bytes:
    """A compact range as one blob: its hashes, largest subtree first."""
    return b"".join(tree.hashes)


def unpack(size: int, blob: bytes) -> CompactRange:
    """The compact range of a tree of `size` leaves from `pack`'s blob."""
    return CompactRange(size, [bytes(blob[i : i + 32]) for i in range(0, len(blob), 32)])


def extend_tree(
    conn: Connection,
    org_id: str,
    agent_id: str,
    old_size: int,
    first_key: str,
    records: Sequence[dict[str, Any]],
    signer: BackendSigner | None,
    now: int,
) -> None:
    """Append the batch's stored records (rows of seq old_size + 1 …, in order) to the agent's tree; sign its head.

    Runs in the batch's write transaction, after the head moved from `old_size`: the tree is at that size too.
    `first_key`: the chain's key before the batch (for a new tree, the key of record 1, which names the log).
    """
    if not records:
        return
    row = conn.execute(
        select(_TREES.c.size, _TREES.c.compact, _TREES.c.origin).where(_TREES.c.agent_id == agent_id)
    ).first()
    if row is None:
        if old_size != 0:
            return  # records stored before the tree existed, and not rebuildable: see the module docstring
        tree, origin = CompactRange(), agent_origin(first_key)
    elif row.size != old_size:  # pragma: no cover - the tree moves with the head, in one transaction
        _log.error("agent %s: tree at size %d, head at %d; the tree is left as it is", agent_id, row.size, old_size)
        return
    else:
        tree, origin = unpack(row.size, row.compact), row.origin
    nodes = tree.extend(bytes.fromhex(record["hash"]) for record in records)
    bulk_insert(conn, _NODES, [{"agent_id": agent_id, "level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes])
    note = None if signer is None else sign_checkpoint(Checkpoint(origin, tree.size, tree.root()), signer, signer.name)
    values = {"size": tree.size, "compact": pack(tree), "note": note, "signed_ns": now}
    if row is None:
        conn.execute(insert(_TREES).values(agent_id=agent_id, org_id=org_id, origin=origin, **values))
    else:
        conn.execute(update(_TREES).where(_TREES.c.agent_id == agent_id).values(**values))


class SqlNodeStore:
    """`hashed.protocol.NodeStore` over one agent's `merkle_nodes` rows: one indexed query per call.

    Args:
        conn: a synchronous connection (`AsyncConnection.run_sync` hands one over).
        agent_id: whose tree.
    """

    def __init__(self, conn: Connection, agent_id: str) -> None:
        self._conn = conn
        self._agent = agent_id

    def get_nodes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        """See `hashed.protocol.NodeStore`."""
        if not coords:
            return []
        # One OR of primary-key lookups (each term names the whole key, so SQLite and PostgreSQL both use it).
        wanted = [
            and_(_NODES.c.agent_id == self._agent, _NODES.c.level == level, _NODES.c.idx == idx)
            for level, idx in coords
        ]
        rows = self._conn.execute(select(_NODES.c.level, _NODES.c.idx, _NODES.c.hash).where(or_(*wanted)))
        found = {(row.level, row.idx): bytes(row.hash) for row in rows}
        missing = [coord for coord in coords if coord not in found]
        if missing:
            raise LookupError(f"no tree node at (level, index) {missing[0]} for agent {self._agent}")
        return [found[coord] for coord in coords]
