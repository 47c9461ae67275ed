"""The ledger's Merkle tree in its own SQLite file: every complete subtree, written as leaves are appended.

One row per complete subtree, `(level, idx, hash)`: level 0 holds the leaf hashes (the records' `hash`), a
node at level L is the root of leaves [idx·2^L, (idx+1)·2^L). A tree of n leaves has 2n - popcount(n) rows, so
any inclusion or consistency proof, for any size the tree has reached, reads O(log n) rows in one query.

The writer calls `append` inside the transaction that commits the records, so records and tree commit (or
roll back) together; after a rollback it calls `reload()`. Appending is one `executemany` per group.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from hashed.protocol._merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    root_at,
)

__all__ = ["SqliteTreeStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS merkle_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID
"""


class SqliteTreeStore:
    """A `NodeStore` on a SQLite connection, with the tree's compact range kept in memory.

    Args:
        conn: an open connection; the caller owns its transactions (this class never commits).

    Example:
        >>> import sqlite3
        >>> tree = SqliteTreeStore(sqlite3.connect(":memory:"))
        >>> tree.append([bytes([i]) * 32 for i in range(3)])
        >>> tree.size, len(tree.inclusion_proof(0, 3))   # leaf 0 needs leaf 1 and the subtree of leaf 2
        (3, 2)
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.execute(_SCHEMA)
        self.tree = CompactRange()
        self.reload()

    @property
    def size(self) -> int:
        """How many leaves the tree holds."""
        return self.tree.size

    def reload(self) -> None:
        """Read the tree's state from the database again (after a rolled-back `append`)."""
        row = self._conn.execute("SELECT max(idx) FROM merkle_nodes WHERE level = 0").fetchone()
        size = 0 if row[0] is None else row[0] + 1
        self.tree = CompactRange.load(self, size)

    def append(self, leaves: Iterable[bytes]) -> None:
        """Add leaf hashes (32 bytes each) in order: one `executemany`, no commit."""
        tree = self.tree.copy()
        nodes = tree.extend(leaves)
        self._conn.executemany("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
        self.tree = tree

    def root(self) -> bytes:
        """The root over every leaf held."""
        return self.tree.root()

    def root_at(self, size: int) -> bytes:
        """The root the tree had at `size` leaves."""
        return root_at(self, self._check(size))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Proof that leaf `index` (seq - 1) is in the tree of `size` leaves."""
        return inclusion_proof(self, index, self._check(size))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """Proof that the tree at `size1` is a prefix of the tree at `size2`."""
        return consistency_proof(self, size1, self._check(size2))

    def get_nodes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        """See `hashed.protocol.NodeStore`: the hashes at (level, index), in order."""
        # One indexed point lookup per node (SQLite plans `(level, idx) IN (VALUES …)` as a scan): O(log n) of them.
        found = []
        for coord in coords:
            row = self._conn.execute("SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", coord).fetchone()
            if row is None:
                raise LookupError(f"the tree store has no node at (level, index) {coord}: is the tree that large?")
            found.append(row[0])
        return found

    def _check(self, size: int) -> int:
        if size > self.tree.size:
            raise ValueError(f"the tree has {self.tree.size} leaves, not {size}")
        return size
