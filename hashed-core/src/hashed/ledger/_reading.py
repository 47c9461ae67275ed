"""Reading the ledger back (records, head, verification), and waiting for what this process queued to commit."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import orjson

from hashed.errors import ChainBrokenError
from hashed.ledger._db import Database
from hashed.ledger._state import LedgerState
from hashed.protocol._record import GENESIS
from hashed.protocol._verify import ChainVerifier, VerifyReport
from hashed.types import LedgerRecord

__all__ = ["Reading"]

_READ_WAIT = 5.0  # seconds a read waits for the writer to commit this process's records (a stuck disk: read anyway)
_JOINED = "FROM records r LEFT JOIN signatures s ON s.seq = r.seq"


class Reading(LedgerState):
    """The reading part of `Ledger`."""

    def _reader(self) -> sqlite3.Connection:
        if self._read is None:
            self._read = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        return self._read

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is committed and signed; False if `timeout` ran out first."""
        writer = self._writer
        deadline = None if timeout is None else time.monotonic() + timeout
        while writer.busy:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if deadline is None and writer.broken is not None:
                return False  # cannot make progress until the disk recovers
            writer.hurry()
            time.sleep(0.001)
        return True

    @property
    def queued(self) -> int:
        """Records this process made that are not committed to the ledger yet (durable/journal and background)."""
        return self._writer.queued

    def _caught_up(self) -> None:
        """Durable (journal) mode: let the writer commit this process's records first, so it reads its own calls.

        Background mode promises less, and does not wait.
        """
        writer = self._writer
        if self.journaled and not writer.on_writer_thread and not (self._closed or self._forked):
            self.flush(_READ_WAIT)

    def records(self, start: int = 1, end: int | None = None) -> Iterator[LedgerRecord]:
        """Records from `start` to `end` (inclusive) in order, read in pages."""
        self._caught_up()
        seq = start - 1
        while True:
            with self._db.lock:
                rows = self._db.conn.execute(
                    f"SELECT r.seq, r.kind, r.body, r.hash, s.sig {_JOINED} "
                    "WHERE r.seq > ? AND r.seq <= ? ORDER BY r.seq LIMIT 1000",
                    (seq, end if end is not None else 2**62),
                ).fetchall()
            if not rows:
                return
            for seq, kind, body, digest, sig in rows:
                yield LedgerRecord(
                    seq, kind, orjson.loads(body), bytes(digest).hex(), None if sig is None else bytes(sig).hex()
                )

    def head(self) -> tuple[int, str]:
        """Sequence number and hash of the last committed record ((0, GENESIS) when empty)."""
        self._caught_up()
        with self._db.lock:
            row = self._db.conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]).hex())

    def verify(self, key: str | None = None) -> VerifyReport:
        """Verify the whole ledger (unsigned records allowed: a live ledger signs within tens of milliseconds)."""
        verifier = ChainVerifier(key=key, require_signatures=False)
        try:
            for record in self.records():
                verifier.check(record.to_json())
        except ChainBrokenError as exc:
            verifier.report.error = exc
        return verifier.report

    @property
    def db(self) -> Database:
        """The underlying database (approvals and the shipper keep their tables in it)."""
        return self._db
