"""The agent's signed checkpoints: its log's size and Merkle root, signed in the C2SP checkpoint format.

A hash chain shows nothing cut off its end; a checkpoint does. The agent signs one when a ledger closes and, so a
long-running agent is covered too, periodically (`CheckpointTimer`: every N records or T seconds), over every record
from the first up to the last one that is signed (an unsigned record, which may be someone else's, ends it). It
stores each with the tree's compact range, so the next one extends it instead of hashing the whole ledger again.

After a key rotation the log keeps its name (the origin: the chain's first key) and the key in force signs: the
rotation record is signed by the old key and names the new one, so a verifier that pinned the first key follows
the chain's rotations to the key that must have signed each checkpoint (docs/protocol.md §8.2).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

import orjson

from hashed.errors import LedgerError, NoteError
from hashed.identity import Identity
from hashed.ledger._db import Database
from hashed.protocol import Checkpoint, CompactRange, agent_origin, parse_signature_lines, sign_checkpoint

__all__ = ["CheckpointTimer", "all_checkpoints", "latest_checkpoint", "sign_ledger_checkpoint", "store_cosigned"]

_log = logging.getLogger("hashed.ledger")
_PAGE = 2_000  # rows read under the ledger's lock at a time: a few ms, so a periodic checkpoint never stalls writers
_NEXT = (
    "SELECT r.seq, r.hash, s.seq IS NOT NULL FROM records r LEFT JOIN signatures s ON s.seq = r.seq "
    "WHERE r.seq > ? ORDER BY r.seq LIMIT ?"
)


def latest_checkpoint(db: Database) -> str | None:
    """The latest checkpoint note the agent signed, or None."""
    with db.lock:
        row = db.conn.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def all_checkpoints(db: Database) -> list[str]:
    """Every checkpoint note the ledger holds, smallest first (with the cosignatures stored with them)."""
    with db.lock:
        return [str(note) for (note,) in db.conn.execute("SELECT note FROM checkpoints ORDER BY size")]


def _key_in_force(conn: sqlite3.Connection, size: int) -> str:
    """The key that signs after record `size`: its key, or the new key it names if it is a rotation."""
    key, kind, body = conn.execute("SELECT key, kind, body FROM records WHERE seq = ?", (size,)).fetchone()
    return str(orjson.loads(body)["new_key"]) if kind == "key_rotation" else str(key)


def sign_ledger_checkpoint(db: Database, identity: Identity) -> str | None:
    """Sign and store a checkpoint over the signed prefix of the chain; the latest note, or None if none.

    The origin is the chain's first key; `identity` signs only when it is the key in force at the checkpoint's
    size (the last rotation's new key), so a process still holding a rotated-out key signs nothing.
    """
    with db.lock:
        conn = db.conn
        first = conn.execute("SELECT key FROM records WHERE seq = 1").fetchone()
        last = conn.execute("SELECT size, subtrees, note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    tree = CompactRange()
    if last is not None:
        blob = bytes(last[1])
        tree = CompactRange(int(last[0]), [blob[i : i + 32] for i in range(0, len(blob), 32)])
    while first is not None:
        with db.lock:
            rows = db.conn.execute(_NEXT, (tree.size, _PAGE)).fetchall()
        for seq, digest, signed in rows:
            if seq != tree.size + 1 or not signed:  # a gap, or a record not proven the agent's: stop before it
                rows = []
                break
            tree.append(bytes(digest))
        if len(rows) < _PAGE:
            break
    if first is None or tree.size == 0 or (last is not None and tree.size == last[0]):
        return None if last is None else str(last[2])
    with db.lock:
        in_force = _key_in_force(db.conn, tree.size)
    if in_force != identity.public_key:
        return None if last is None else str(last[2])
    note = sign_checkpoint(Checkpoint(agent_origin(first[0]), tree.size, tree.root()), identity)
    with db.write() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO checkpoints (size, note, subtrees) VALUES (?, ?, ?)",
            (tree.size, note, b"".join(tree.hashes)),
        )
    return note


def store_cosigned(db: Database, note: str) -> int:
    """Keep the cosignatures gathered for a stored checkpoint (`request_cosignatures`'s note); how many are new.

    Raises:
        NoteError: the ledger holds no checkpoint with this text (a checkpoint of another tree, or of none).
    """
    split = note.rfind("\n\n")
    text, lines = note[: split + 1], parse_signature_lines(note[split + 2 :])
    size = Checkpoint.parse(text).size
    with db.lock:
        row = db.conn.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
    if row is None or not str(row[0]).startswith(text + "\n"):
        raise NoteError(f"this ledger signed no checkpoint with this text at size {size}")
    stored = str(row[0])
    have = set(parse_signature_lines(stored[len(text) + 1 :]))
    new = [line for line in lines if line not in have]
    if new:
        with db.write() as conn:
            conn.execute(
                "UPDATE checkpoints SET note = ? WHERE size = ?", (stored + "".join(s.line for s in new), size)
            )
    return len(new)


class CheckpointTimer:
    """Signs a checkpoint every `every_records` new records or `every_seconds`, whichever comes first.

    A thread of its own that wakes once a second, reads the ledger's size (one indexed lookup) and signs only when
    due, so the guarded call's path never waits on it. `close()` stops it; the ledger's close signs the last one.

    Args:
        db: the ledger's database.
        identity: the key in force (read at each checkpoint: a rotation changes it).
        every_records: sign once this many records were added since the last checkpoint (0: never by count).
        every_seconds: sign when this much time has passed and records were added (0: never by time).
    """

    def __init__(
        self, db: Database, identity: Callable[[], Identity], *, every_records: int, every_seconds: float
    ) -> None:
        self._db = db
        self._identity = identity
        self._records = every_records
        self._seconds = every_seconds
        self._stop = threading.Event()
        self._last_size = 0
        self._last_time = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="hashed-checkpoints", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        poll = min(1.0, self._seconds) if self._seconds > 0 else 1.0
        while not self._stop.wait(poll):
            try:
                self.tick()
            except sqlite3.ProgrammingError:  # the ledger was closed under it (not through Hashed.close): stop
                return
            except (LedgerError, sqlite3.Error, NoteError):
                _log.warning("hashed: no periodic checkpoint signed; trying again later", exc_info=True)

    def tick(self) -> bool:
        """Sign a checkpoint if one is due; whether one was signed."""
        with self._db.lock:
            top = self._db.conn.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
        grown = top - self._last_size
        by_count = self._records > 0 and grown >= self._records
        by_time = self._seconds > 0 and grown > 0 and time.monotonic() - self._last_time >= self._seconds
        if not (by_count or by_time):
            return False
        note = sign_ledger_checkpoint(self._db, self._identity())
        self._last_time = time.monotonic()
        self._last_size = int(note.split("\n", 2)[1]) if note else 0
        return note is not None

    def close(self) -> None:
        """Stop the thread (the ledger's close signs the final checkpoint)."""
        self._stop.set()
        self._thread.join(5.0)
