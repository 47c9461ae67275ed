"""Signing records committed in the caller, off the caller's thread (immediate mode; durable mode's approvals).

Ed25519 signing costs about 20 µs; a helper process signs batches beside the caller on the machine's other
core. The signatures do not get a transaction of their own: once 16 are ready, the next caller's commit
carries them (one INSERT of many rows in a transaction that costs little more than the caller's own). When
callers go quiet, the signer writes what is left itself after a few milliseconds.

Records a crashed process left unsigned are found from the `signed_through` watermark (everything at or
below it is signed): at open, and every few seconds by any live signer of the same key. Ed25519 signatures
are deterministic, so two processes sealing the same record write the same bytes. Only a row whose MAC holds
(`_mac.py`) is sealed: one that someone else added stays unsigned, is logged once, and `hashed verify` fails on it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence

from hashed.errors import LedgerWriteError
from hashed.identity import Identity
from hashed.ledger._db import Database, get_meta, set_meta
from hashed.ledger._mac import Macs
from hashed.ledger._sign_service import sign_many

__all__ = ["Signer", "seal_unsigned"]

_log = logging.getLogger("hashed.ledger")
UPDATE_SIG = "INSERT OR IGNORE INTO signatures (sig, seq) VALUES (?, ?)"  # the first signature stays
_UNSIGNED = "FROM records r LEFT JOIN signatures s ON s.seq = r.seq WHERE r.seq > ? AND s.seq IS NULL"
_BUSY_POLL = 0.02  # seconds between batches while records keep coming: fewer, larger batches keep the callers' p99 low
_QUIET = 0.02  # write signatures itself when no caller committed for this long
_WARM = 1.0  # seconds after a commit during which this thread polls instead of being woken by each commit
_CHECKPOINT_EVERY = 200  # records between background WAL checkpoints (≈ 0.5 MB of WAL)
_SWEEP = 2.0  # seconds between looks for records a crashed process left unsigned
_PAGE = 5000  # unsigned rows read at a time


def seal_unsigned(db: Database, identity: Identity, macs: Macs, *, older_than_ns: int | None = None) -> int:
    """Sign this key's unsigned records above the `signed_through` watermark, then advance it.

    A row is signed only when its MAC holds under `macs` (the agent wrote it); any other unsigned row is refused:
    logged once, and the watermark stays below it. `older_than_ns` skips records newer than that (a live process
    is about to sign them itself). Returns how many records were signed.
    """
    with db.lock:
        mark = get_meta(db.conn, "signed_through")
    cursor, signed, first_left = mark, 0, None
    while True:
        with db.lock:
            rows = db.conn.execute(
                f"SELECT r.seq, r.hash, r.key, r.ts, r.mac {_UNSIGNED} ORDER BY r.seq LIMIT {_PAGE}", (cursor,)
            ).fetchall()
        mine: list[tuple[int, bytes]] = []
        for seq, digest, key, ts, row_mac in rows:
            if older_than_ns is not None and ts >= older_than_ns:
                first_left = seq if first_left is None else first_left
            elif key == identity.public_key and macs.row_ok(bytes(digest), row_mac):
                mine.append((seq, bytes(digest)))
            else:
                first_left = seq if first_left is None else first_left
                if key == identity.public_key and seq not in db.refused:
                    db.refused.add(seq)
                    _log.error(
                        "hashed: ledger record %d is unsigned and this agent did not write it (its MAC does not "
                        "hold): not signing it; `hashed verify` names it",
                        seq,
                    )
        if mine:
            signatures = sign_many(identity, [digest for _, digest in mine])
            with db.write() as conn:
                conn.executemany(UPDATE_SIG, list(zip(signatures, (seq for seq, _ in mine), strict=True)))
            signed += len(mine)
        if len(rows) < _PAGE:
            break
        cursor = rows[-1][0]
    with db.write() as conn:
        if first_left is None:
            low = conn.execute(f"SELECT min(r.seq) {_UNSIGNED}", (cursor,)).fetchone()[0]
        else:
            low = first_left
        high = conn.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
        new_mark = high if low is None else low - 1
        if new_mark > get_meta(conn, "signed_through"):
            set_meta(conn, "signed_through", new_mark)
    return signed


class Signer:
    """A thread that signs records as they are committed."""

    def __init__(self, db: Database, identity: Callable[[], Identity], name: str) -> None:
        self._db = db
        self._identity = identity
        # (seq, hash, the identity whose key the record names): a rotation may come before its signature
        self._pending: collections.deque[tuple[int, bytes, Identity]] = collections.deque()
        self._ready: collections.deque[tuple[bytes, int]] = collections.deque()
        self._kick = threading.Event()
        self._idle = True
        self._urgent = False
        self._closed = False
        self._busy = 0
        self.last_commit = 0.0
        self._last_sweep = time.monotonic()
        self._since_checkpoint = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def committed(self, records: Sequence[tuple[int, bytes, Identity]]) -> None:
        """Records `(seq, hash, identity)` were just committed unsigned (called by the committing thread).

        Each is signed by the identity that placed it (whose key its body names), even if the agent's key was
        rotated meanwhile.
        """
        self._pending.extend(records)
        self.last_commit = time.monotonic()
        if self._idle:
            self._kick.set()

    def take_ready(self, limit: int | None = None, *, at_least: int = 0) -> list[tuple[bytes, int]]:
        """Signatures `(sig, seq)` to write in the caller's transaction: at most `limit`, none if fewer than `at_least`.

        A caller that would otherwise append its record alone (one INSERT, no transaction) takes signatures only
        when there are enough to be worth opening a transaction for; the rest wait for a later caller, or for
        this thread once callers go quiet.
        """
        ready = self._ready
        if len(ready) < at_least:
            return []
        count = len(ready) if limit is None else min(limit, len(ready))
        taken: list[tuple[bytes, int]] = []
        for _ in range(count):
            try:
                taken.append(ready.popleft())
            except IndexError:  # callers and this signer's thread take without a lock: another took the rest
                break
        return taken

    def give_back(self, signatures: list[tuple[bytes, int]]) -> None:
        """Signatures a failed transaction did not store."""
        self._ready.extendleft(reversed(signatures))

    @property
    def busy(self) -> bool:
        """Whether anything is waiting to be signed or stored."""
        return bool(self._pending or self._ready or self._busy)

    def hurry(self) -> None:
        """Sign and store everything now (flush, close)."""
        self._urgent = True
        self._kick.set()

    def _loop(self) -> None:
        while True:
            if not self._pending and not self._ready:
                if self._closed:
                    return
                if time.monotonic() - self.last_commit < _WARM:
                    self._kick.wait(_BUSY_POLL)  # callers are active: look again soon rather than be woken by each
                else:
                    self._idle = True
                    if not self._pending:
                        self._kick.wait(1.0)
                    self._idle = False
                self._kick.clear()
            elif not self._urgent:
                self._kick.wait(_BUSY_POLL)
                self._kick.clear()
            self._busy = 1
            try:
                self._sign_pending()
                now = time.monotonic()
                quiet = now - self.last_commit > _QUIET
                if self._ready and (quiet or self._urgent or self._closed):
                    self._store()
                if now - self._last_sweep > _SWEEP and not self._closed:
                    self._sweep()
                if self._since_checkpoint >= _CHECKPOINT_EVERY or (quiet and self._since_checkpoint):
                    self._since_checkpoint = 0
                    self._db.checkpoint()
            finally:
                self._busy = 0
            if not self._pending and not self._ready:
                self._urgent = False

    def _sign_pending(self) -> None:
        pending = self._pending
        if not pending:
            return
        batch = [pending.popleft() for _ in range(len(pending))]
        self._since_checkpoint += len(batch)
        by_key: dict[str, list[tuple[int, bytes, Identity]]] = {}
        for entry in batch:  # one key, except around a rotation
            by_key.setdefault(entry[2].public_key, []).append(entry)
        for group in by_key.values():
            signatures = sign_many(group[0][2], [digest for _, digest, _ in group])
            self._ready.extend(zip(signatures, (seq for seq, _, _ in group), strict=True))

    def _sweep(self) -> None:
        self._last_sweep = time.monotonic()
        try:
            identity = self._identity()
            seal_unsigned(self._db, identity, Macs(identity.seed), older_than_ns=time.time_ns() - int(_SWEEP * 1e9))
        except LedgerWriteError:
            _log.warning("hashed: could not look for unsigned records; trying again later", exc_info=True)

    def _store(self) -> None:
        signatures = self.take_ready()
        try:
            with self._db.write() as conn:
                conn.executemany(UPDATE_SIG, signatures)
        except LedgerWriteError:
            self.give_back(signatures)
            _log.exception("hashed: cannot store signatures yet; they are kept and retried")
            if self._closed:
                self._ready.clear()  # the next start signs these records again (seal)
                return
            time.sleep(0.2)

    def close(self, timeout: float | None) -> None:
        """Store everything, then stop."""
        self._closed = True
        self.hurry()
        self._thread.join(timeout)
