"""What opening a ledger checks and finishes: the head, unsigned records, and dead processes' journals.

The chain head must be this agent's (signed, or carrying its MAC); records a crash left unsigned are signed; what
dead processes left in their journals is committed.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Iterable

import orjson

from hashed.errors import LedgerError
from hashed.ledger._db import get_meta, set_meta
from hashed.ledger._journal import dead_journals
from hashed.ledger._queued import ForgedFrameError, Queued, from_frame, log_text
from hashed.ledger._replays import committed_nonces
from hashed.ledger._signer import seal_unsigned
from hashed.ledger._state import LedgerState
from hashed.ledger._txn import Txn
from hashed.protocol import verify_signature
from hashed.protocol._record import GENESIS

__all__ = ["Opening"]

_log = logging.getLogger("hashed.ledger")
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
        frame twice; the offset reached is committed with the records, so a replay cut short resumes there. A
        frame whose record the ledger holds already (`_authentic`) is not committed again.
        """
        replayed = 0
        for journal in dead_journals(self.journals):
            try:
                key = f"journal:{journal.name}"
                with self._db.lock:
                    start = get_meta(self._db.conn, key)
                try:
                    pending = self._authentic(key, journal.frames(start))
                    for at in range(0, len(pending), 500):
                        group = pending[at : at + 500]
                        self.transact(functools.partial(self._replay, key=key, group=group), sign_now=True)
                        replayed += sum(item is not None for _, item in group)
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

    def _authentic(self, key: str, frames: Iterable[tuple[int, bytes]]) -> list[tuple[int, Queued | None]]:
        """The records of a dead journal's frames, each with the offset past its frame; None for a frame not to commit.

        Not committed: a frame the agent did not write (its MAC fails), and a *replayed* frame, the agent's own
        but already committed: copied from another journal, or twice into this one. Its MAC holds, so without
        this check the agent would sign the same call twice, and the backend, which refuses a nonce used before,
        would refuse that record and, the chain broken there, every record after it.
        """
        out: list[tuple[int, Queued | None]] = []
        for end, frame in frames:
            try:
                out.append((end, from_frame(frame, self.mac)))
            except ForgedFrameError as exc:
                exc.log(key)
                out.append((end, None))
        times = {item.ts for _, item in out if item is not None}
        if not times:
            return out
        with self._db.lock:
            used = committed_nonces(self._db.conn, times)
        for n, (end, item) in enumerate(out):
            if item is None:
                continue
            if item.nonce in used:
                text = log_text(item, self.recipes)
                _log.error("hashed: %s holds a copy of a record already committed; not committed again: %s", key, text)
                out[n] = (end, None)
            used.add(item.nonce)
        return out

    def _replay(self, txn: Txn, key: str, group: list[tuple[int, Queued | None]]) -> None:
        # placed when the step commits, with the time and nonce the frame holds
        txn.items.extend(item for _, item in group if item is not None)
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
