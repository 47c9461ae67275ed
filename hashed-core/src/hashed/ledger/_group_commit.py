"""The writer's group commit: place, hash and commit a group of queued records in one transaction, signed.

A group's signatures (made by the helper process while the group is prepared) are stored with the next group,
so callers never wait for the last signature of a group.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from hashed.errors import LedgerWriteError
from hashed.ledger._db import Database
from hashed.ledger._journal_feed import MAX_QUEUE, JournalFeed
from hashed.ledger._queued import Queued, Recipes, built_fields, journal_marks, log_lost, store_marks
from hashed.ledger._sign_service import SigningPipeline
from hashed.ledger._usage import add_usage
from hashed.protocol._canonical import encode_prepared
from hashed.protocol._record import leaf_hash
from hashed.types import LedgerRecord

__all__ = ["BodyMaker", "GroupCommit", "Placer"]

_log = logging.getLogger("hashed.ledger")
_CHUNK = 256  # records per signing request: small enough to overlap, large enough to amortise the round trip
Staged = tuple[int, bytes, Queued, bytes, "dict[str, Any] | None"]  # seq, hash, item, encoded body, body kept
_INSERT_RECORD = "INSERT INTO records (seq, hash, key, kind, ts, body, mac) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_SIG = "INSERT OR IGNORE INTO signatures (seq, sig) VALUES (?, ?)"
Placer = Callable[[Any], tuple[int, str]]
BodyMaker = Callable[[int, str, int, str, str, str, dict[str, Any]], dict[str, Any]]


class GroupCommit(JournalFeed):
    """The committing part of `BackgroundWriter` (runs on its thread)."""

    _db: Database
    _head: Placer
    _body: BodyMaker
    _pipeline: Callable[[], SigningPipeline]
    _key: Callable[[], str]
    _observer: Callable[[], Callable[[LedgerRecord], None] | None]
    _recipes: Recipes
    _on_error: str
    _expected: tuple[int, str] | None  # the chain head after this writer's last commit
    _unsaved: list[tuple[int, bytes]]  # (seq, signature) of committed records, stored next time
    _usage_lock: threading.Lock
    _queued_usage: dict[str, collections.deque[tuple[int, float]]]
    _drained: threading.Event
    _cycle: threading.Lock
    _holding: bool
    _closed: bool

    def _write(self, batch: list[Queued]) -> None:
        """Place, hash and commit `batch`; its signatures are stored with the next group (or alone, when idle).

        The records are built, hashed and sent for signing before the write lock is taken, on the chain head this
        writer last committed: the lock is then held only for the INSERTs, so a caller that commits to SQLite
        itself (a window count, an approval) or another process waits for that, not for the Python work. If the
        head moved meanwhile (another process appended), the group is built again inside the transaction.
        Callers are released as soon as the records are committed: the helper process finishes signing them
        while they go on, instead of making them wait for the last signature of a large group.
        """
        unsaved = self._unsaved
        with self._pipeline() as pipeline:  # the helper signs each chunk while the next is prepared
            expected = self._expected
            staged = self._stage(batch, expected, pipeline) if expected is not None else None
            stale = 0  # signatures asked for a group built on a head that moved: not stored
            try:
                with self._db.write() as conn:
                    head = self._head(conn)
                    if staged is None or head != expected:
                        stale = 0 if staged is None else len(staged)
                        staged = self._stage(batch, head, pipeline)
                    key, mac = self._key(), self._mac()
                    rows = [
                        (seq, digest, key, item.kind, item.ts, data, mac.row(digest))
                        for seq, digest, item, data, _ in staged
                    ]
                    conn.executemany(_INSERT_RECORD, rows)
                    marks = journal_marks(batch)
                    store_marks(conn, marks)  # committed with the records: a replay resumes after them
                    if unsaved:
                        conn.executemany(_INSERT_SIG, unsaved)
                    usage = [(scope, item.ts, amount) for item in batch for scope, amount in item.usage]
                    if usage:
                        add_usage(conn, usage)
            except LedgerWriteError as exc:
                self._expected = None
                self._failed(exc, batch)
                return
            except BaseException:
                self._expected = None
                raise
            self._expected = (staged[-1][0], staged[-1][1].hex())
            self._unsaved = []
            self.broken = None
            self._done(batch)
            self.committed(marks)
            self._release_cycle()  # the rest (signatures, checkpoint, observer) never holds up `taken`
            signatures = pipeline.results()[stale:]
        self._unsaved = [(seq, sig) for (seq, *_), sig in zip(staged, signatures, strict=True)]
        self._db.checkpoint()
        observer = self._observer()
        if observer is not None:
            for (seq, digest, item, data, kept), sig in zip(staged, signatures, strict=True):
                body = kept if kept is not None else orjson.loads(data)  # an observer that came mid-group
                observer(LedgerRecord(seq, item.kind, body, digest.hex(), sig.hex()))

    def _stage(self, batch: list[Queued], head: tuple[int, str], pipeline: SigningPipeline) -> list[Staged]:
        """Build, hash and send for signing each record of `batch`, placed after `head`."""
        seq, prev = head
        staged: list[Staged] = []
        keep = self._observer() is not None  # else each body dies young, unseen by the GC's old ages
        recipes = self._recipes
        chunk: list[bytes] = []
        for item in batch:
            seq += 1
            fields, slow = built_fields(item.kind, item.fields, item.slow, recipes)
            body = self._body(seq, prev, item.ts, item.nonce, item.kind, item.agent, fields)
            data = encode_prepared(body, slow)
            digest = leaf_hash(data)
            staged.append((seq, digest, item, data, body if keep else None))
            prev = digest.hex()
            chunk.append(digest)
            if len(chunk) == _CHUNK:
                pipeline.add(chunk)
                chunk = []
        if chunk:
            pipeline.add(chunk)
        return staged

    def _release_cycle(self) -> None:
        if self._holding:
            self._holding = False
            self._cycle.release()

    def _save_signatures(self) -> None:
        """Store the last group's signatures when no records follow to carry them."""
        try:
            with self._db.write() as conn:
                conn.executemany(_INSERT_SIG, self._unsaved)
        except LedgerWriteError as exc:
            if self._closed:
                _log.error("hashed: signatures not stored (%s); the ledger signs these records when it next opens", exc)
                self._unsaved = []
                return
            _log.error("hashed: cannot store signatures yet (%s); they are kept and retried", exc)
            time.sleep(0.2)
            return
        self._unsaved = []
        self._db.checkpoint()

    def _failed(self, exc: LedgerWriteError, batch: list[Queued]) -> None:
        if self._on_error == "open":
            for item in batch:
                log_lost(item, f"ledger write failed ({exc})", self._recipes)
            self._done(batch)
            return
        if self.broken is None:
            _log.error("hashed: ledger write failed, guarded calls are refused until it recovers: %s", exc)
        self.broken = exc
        time.sleep(0.2)

    def _done(self, batch: list[Queued]) -> None:
        with self._usage_lock:
            for item in batch:
                self._queue.popleft()
                for scope, _ in item.usage:
                    self._queued_usage[scope].popleft()
        if len(self._queue) <= MAX_QUEUE // 2:
            self._drained.set()
