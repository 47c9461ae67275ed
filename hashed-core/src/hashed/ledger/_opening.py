"""What opening a ledger checks and finishes: the head, unsigned records, and dead processes' journals.

The chain head must be this agent's (signed, or carrying its MAC); records a crash left unsigned are signed; what
dead processes left in their journals is committed.
"""

from __future__ import annotations

import functools
import sqlite3

import orjson

from hashed.errors import LedgerError
from hashed.ledger._db import get_meta, set_meta
from hashed.ledger._journal import dead_journals
from hashed.ledger._queued import ForgedFrameError, from_frame
from hashed.ledger._signer import seal_unsigned
from hashed.ledger._state import LedgerState
from hashed.ledger._txn import Txn
from hashed.protocol import verify_signature
from hashed.protocol._record import GENESIS

__all__ = ["Opening"]

_HEAD = "SELECT seq, hash, key, kind FROM records ORDER BY seq DESC LIMIT 1"
_HEAD_PROOF = (
    "SELECT r.seq, r.hash, r.key, r.mac, s.sig FROM records r LEFT JOIN signatures s ON s.seq = r.seq "
    "ORDER BY r.seq DESC LIMIT 1"
)


class Opening(LedgerState):
    """The opening part of `Ledger` (also what its close and a key rotation rely on)."""

    def replay_journals(self) -> int:
        """Commit what dead processes left in their journals (journal mode); returns how many records.

        Each journal is locked while it is replayed, so two processes opening the ledger at once never commit a
        frame twice; the offset reached is committed with the records, so a replay cut short resumes there.
        """
        replayed = 0
        for journal in dead_journals(self.journals):
            try:
                key = f"journal:{journal.name}"
                with self._db.lock:
                    start = get_meta(self._db.conn, key)
                try:
                    pending = list(journal.frames(start))
                    for at in range(0, len(pending), 500):
                        group = pending[at : at + 500]
                        self.transact(functools.partial(self._replay, key=key, group=group), sign_now=True)
                        replayed += len(group)
                except (ValueError, TypeError, KeyError) as exc:  # a file or frame this version cannot read
                    raise LedgerError(
                        f"cannot commit the records left in the journal {journal.path} ({exc}); "
                        "move the file aside to start without them, and keep it: its records are not in the ledger"
                    ) from exc
                journal.discard()
                with self._db.write() as conn:
                    conn.execute("DELETE FROM meta WHERE name = ?", (key,))
            finally:
                journal.close()
        return replayed

    def _replay(self, txn: Txn, key: str, group: list[tuple[int, bytes]]) -> None:
        for _, payload in group:
            try:
                item = from_frame(payload, self.mac)
            except ForgedFrameError as exc:
                exc.log(key)
                continue
            txn.items.append(item)  # placed when the step commits, with the time and nonce the frame holds
        set_meta(txn.conn, key, group[-1][0])

    def _head_for_append(self, conn: sqlite3.Connection) -> tuple[int, str]:
        row = conn.execute(_HEAD).fetchone()
        if row is None:
            return 0, GENESIS
        seq, digest, key, kind = row
        if kind == "key_rotation":
            body = conn.execute("SELECT body FROM records WHERE seq = ?", (seq,)).fetchone()[0]
            key = orjson.loads(body)["new_key"]
        if key != self.identity.public_key:
            raise LedgerError(
                f"the ledger at {self.path} continues with key {key[:16]}…, but this process holds "
                f"{self.identity.public_key[:16]}…: use the agent key that wrote it"
            )
        return int(seq), bytes(digest).hex()

    def _check_head(self, conn: sqlite3.Connection) -> None:
        """Refuse a chain head this agent did not write: neither signed by its key nor carrying its MAC.

        Appending after it would put the agent's own signatures on a chain that continues someone else's record.
        """
        row = conn.execute(_HEAD_PROOF).fetchone()
        if row is None:
            return
        seq, digest, key, mac, sig = row
        if sig is not None:
            proven = verify_signature(key, bytes(digest).hex(), bytes(sig).hex())
        else:
            proven = key == self.identity.public_key and self.mac.row_ok(bytes(digest), mac)
        if not proven:
            raise LedgerError(
                f"the last record of the ledger at {self.path} (seq {seq}) is neither signed nor authenticated by "
                "this agent's key: something other than the agent wrote it. Run `hashed verify` to see the chain; "
                "keep the file as evidence and move it aside to start a new ledger"
            )

    def seal(self) -> int:
        """Sign every record of this key still unsigned (after a crash, or another process's); returns how many."""
        return seal_unsigned(self._db, self.identity, self.mac)
