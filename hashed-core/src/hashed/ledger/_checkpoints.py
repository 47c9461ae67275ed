"""The agent's signed checkpoints: its log's size and Merkle root, signed in the C2SP checkpoint format.

A hash chain shows nothing cut off its end; a checkpoint does. When a ledger closes, the agent signs a checkpoint
over every record from the first up to the last one that is signed (an unsigned record, which may be someone
else's, ends it), and stores it with the tree's compact range, so the next one extends it instead of hashing
the whole ledger again. `hashed proof checkpoint` prints the latest; `hashed verify --checkpoint FILE` then
proves a ledger or an export is that history, not a shortened or rewritten one (docs/protocol.md §8).
"""

from __future__ import annotations

from hashed.identity import Identity
from hashed.ledger._db import Database
from hashed.protocol import Checkpoint, CompactRange, agent_origin, sign_checkpoint

__all__ = ["latest_checkpoint", "sign_ledger_checkpoint"]

_PAGE = 10_000
_NEXT = (
    "SELECT r.seq, r.hash, s.seq IS NOT NULL FROM records r LEFT JOIN signatures s ON s.seq = r.seq "
    "WHERE r.seq > ? ORDER BY r.seq LIMIT ?"
)


def latest_checkpoint(db: Database) -> str | None:
    """The latest checkpoint note the agent signed, or None."""
    with db.lock:
        row = db.conn.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def sign_ledger_checkpoint(db: Database, identity: Identity) -> str | None:
    """Sign and store a checkpoint over the signed prefix of the chain; the latest note, or None if none.

    Only the chain's own key signs (after a key rotation no checkpoint is signed yet: a verifier pins the key the
    chain starts with).
    """
    with db.lock:
        conn = db.conn
        first = conn.execute("SELECT key FROM records WHERE seq = 1").fetchone()
        last = conn.execute("SELECT size, subtrees, note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    if first is None or first[0] != identity.public_key:
        return None if last is None else str(last[2])
    tree = CompactRange()
    if last is not None:
        blob = bytes(last[1])
        tree = CompactRange(int(last[0]), [blob[i : i + 32] for i in range(0, len(blob), 32)])
    while True:
        with db.lock:
            rows = db.conn.execute(_NEXT, (tree.size, _PAGE)).fetchall()
        for seq, digest, signed in rows:
            if seq != tree.size + 1 or not signed:  # a gap, or a record not proven the agent's: stop before it
                rows = []
                break
            tree.append(bytes(digest))
        if len(rows) < _PAGE:
            break
    if last is not None and tree.size == last[0]:
        return str(last[2])
    if tree.size == 0:
        return None
    note = sign_checkpoint(Checkpoint(agent_origin(first[0]), tree.size, tree.root()), identity)
    with db.write() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO checkpoints (size, note, subtrees) VALUES (?, ?, ?)",
            (tree.size, note, b"".join(tree.hashes)),
        )
    return note
