"""Placing records in the chain, the one way every record is placed: `stage`, then `insert`.

`stage` builds and hashes records after a head, `insert` adds them; the writer's group commit (`GroupCommit`) and
a caller's step (`Appending._commit`) use both.

A group's signatures (made by the helper process while the group is prepared) are stored with the next group,
so callers never wait for the last signature of a group; records a caller's step committed are signed by the
writer thread too (`sign_later`) and stored the same way.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from hashed.errors import LedgerWriteError
from hashed.ledger._db import Database
from hashed.ledger._journal_feed import MAX_QUEUE, JournalFeed
from hashed.ledger._mac import Macs
from hashed.ledger._queued import Queued, Recipes, journal_marks, log_lost, store_marks
from hashed.ledger._sign_service import SigningPipeline
from hashed.ledger._usage import add_usage
from hashed.protocol._canonical import encode_prepared
from hashed.protocol._record import leaf_hash
from hashed.types import LedgerRecord

__all__ = ["INSERT_SIG", "BodyMaker", "GroupCommit", "Placer", "Staged", "insert", "stage", "usage_rows"]

_log = logging.getLogger("hashed.ledger")
_CHUNK = 256  # records per signing request: small enough to overlap, large enough to amortise the round trip
Staged = tuple[int, bytes, Queued, bytes, "dict[str, Any] | None"]  # seq, hash, item, encoded body, body kept
_INSERT_RECORD = "INSERT INTO records (seq, hash, key, kind, ts, body, mac) VALUES (?, ?, ?, ?, ?, ?, ?)"
INSERT_SIG = "INSERT OR IGNORE INTO signatures (seq, sig) VALUES (?, ?)"  # the first signature stays
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
    # (seq, signature) of committed records, stored by the next commit, the writer's or a caller's (`take_ready`)
    _ready: collections.deque[tuple[int, bytes]]
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
        unsaved = self.take_ready()
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
                    insert(conn, staged, self._key(), self._mac())
                    marks = journal_marks(batch)
                    store_marks(conn, marks)  # committed with the records: a replay resumes after them
                    if unsaved:
                        conn.executemany(INSERT_SIG, unsaved)
                    usage = usage_rows(batch)
                    if usage:
                        add_usage(conn, usage)
            except LedgerWriteError as exc:
                self._expected = None
                self.give_back(unsaved)
                self._failed(exc, batch)
                return
            except BaseException:
                self._expected = None
                self.give_back(unsaved)
                raise
            self._expected = (staged[-1][0], staged[-1][1].hex())
            self.broken = None
            self._done(batch)
            self.committed(marks)
            self._release_cycle()  # the rest (signatures, checkpoint, observer) never holds up `taken`
            signatures = pipeline.results()[stale:]
        self._ready.extend((seq, sig) for (seq, *_), sig in zip(staged, signatures, strict=True))
        self._db.checkpoint()
        observer = self._observer()
        if observer is not None:
            for (seq, digest, item, data, kept), sig in zip(staged, signatures, strict=True):
                body = kept if kept is not None else orjson.loads(data)  # an observer that came mid-group
                observer(LedgerRecord(seq, item.kind, body, digest.hex(), sig.hex()))

    def _stage(self, batch: list[Queued], head: tuple[int, str], pipeline: SigningPipeline) -> list[Staged]:
        """`stage` the group, sending each chunk of hashes to the helper to sign while the next is built."""
        return stage(batch, head, self._body, self._recipes, keep=self._observer() is not None, chunks=pipeline.add)

    def _release_cycle(self) -> None:
        if self._holding:
            self._holding = False
            self._cycle.release()

    def take_ready(self, limit: int | None = None, *, at_least: int = 0) -> list[tuple[int, bytes]]:
        """Signatures `(seq, sig)` for a commit to store: at most `limit`, none if fewer than `at_least` are ready.

        A caller that would otherwise append its record alone (one INSERT, no transaction) takes signatures only
        when there are enough to be worth opening a transaction for; the rest wait for a later commit, or for this
        thread once callers go quiet. Callers and this thread take without a lock (deque operations are atomic).
        """
        ready = self._ready
        if len(ready) < at_least:
            return []
        count = len(ready) if limit is None else min(limit, len(ready))
        taken: list[tuple[int, bytes]] = []
        for _ in range(count):
            try:
                taken.append(ready.popleft())
            except IndexError:  # another thread took the rest
                break
        return taken

    def give_back(self, signatures: list[tuple[int, bytes]]) -> None:
        """Signatures a failed commit did not store."""
        self._ready.extendleft(reversed(signatures))

    def _save_signatures(self) -> None:
        """Store the signatures ready when no commit follows to carry them."""
        signatures = self.take_ready()
        if not signatures:
            return
        try:
            with self._db.write() as conn:
                conn.executemany(INSERT_SIG, signatures)
        except LedgerWriteError as exc:
            if self._closed:
                _log.error("hashed: signatures not stored (%s); the ledger signs these records when it next opens", exc)
                return
            self.give_back(signatures)
            _log.error("hashed: cannot store signatures yet (%s); they are kept and retried", exc)
            time.sleep(0.2)
            return
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


def stage(
    items: list[Queued],
    head: tuple[int, str],
    body: BodyMaker,
    recipes: Recipes,
    *,
    keep: bool,
    chunks: Callable[[list[bytes]], None] | None = None,
) -> list[Staged]:
    """Build and hash each record of `items`, placed one after another after `head`.

    `keep` keeps each body (for an observer; else it dies young, unseen by the GC's old ages); `chunks`, if given,
    is handed the hashes `_CHUNK` at a time as they are made (the writer's helper signs them meanwhile).
    """
    seq, prev = head
    staged: list[Staged] = []
    chunk: list[bytes] = []
    for item in items:
        seq += 1
        fields, slow = item.fields, item.slow
        if isinstance(fields, tuple):  # a recipe (`built_fields`, inline: one call less per record)
            fields, slow = recipes[item.kind](fields)
        record = body(seq, prev, item.ts, item.nonce, item.kind, item.agent, fields)
        data = encode_prepared(record, slow)
        digest = leaf_hash(data)
        staged.append((seq, digest, item, data, record if keep else None))
        prev = digest.hex()
        if chunks is not None:
            chunk.append(digest)
            if len(chunk) == _CHUNK:
                chunks(chunk)
                chunk = []
    if chunk and chunks is not None:
        chunks(chunk)
    return staged


def insert(conn: sqlite3.Connection, staged: list[Staged], key: str, mac: Macs | None) -> None:
    """Add the staged records; each carries its MAC under `mac` until it is signed (None: signed in this step).

    The first record goes alone: if another process appended since the head was read, it is the one that fails
    (`sqlite3.IntegrityError`, nothing added), and the caller stages again after the new head.
    """
    seq, digest, item, data, _ = staged[0]
    conn.execute(_INSERT_RECORD, (seq, digest, key, item.kind, item.ts, data, None if mac is None else mac.row(digest)))
    if len(staged) > 1:
        rows = [
            (seq, digest, key, item.kind, item.ts, data, None if mac is None else mac.row(digest))
            for seq, digest, item, data, _ in staged[1:]
        ]
        conn.executemany(_INSERT_RECORD, rows)


def usage_rows(items: list[Queued]) -> list[tuple[str, int, float]]:
    """The window usage `(scope, ts, amount)` the records of `items` carry, to count with them (`add_usage`).

    A loop, not a comprehension: most groups a caller places are one record without usage.
    """
    rows: list[tuple[str, int, float]] = []
    for item in items:
        if item.usage:
            rows.extend((scope, item.ts, amount) for scope, amount in item.usage)
    return rows
