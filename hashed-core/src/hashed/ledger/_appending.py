"""Appending to the ledger: one step in a transaction, one queued or journaled record, a key rotation.

`transact` runs a step (`Txn`) atomically and places its records the writer's way (`_group_commit.stage`), after
what the writer still held; `enqueue` queues or journals a record; `_recording.py` says which a record takes.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from hashed._random import token16
from hashed.errors import LedgerError, LedgerWriteError
from hashed.identity import Identity
from hashed.ledger._group_commit import INSERT_SIG, Staged, insert, stage, usage_rows
from hashed.ledger._journal import Journal
from hashed.ledger._queued import Queued, Recipe, built_fields, journal_marks, queued, store_marks
from hashed.ledger._sign_service import sign_many
from hashed.ledger._state import LedgerState
from hashed.ledger._txn import Txn
from hashed.ledger._usage import Last, add_usage
from hashed.protocol._canonical import prepared_default
from hashed.protocol._record import PROTOCOL_VERSION
from hashed.types import LedgerRecord

__all__ = ["Appending"]

T = TypeVar("T")
Committed = tuple[list[Staged], list[bytes], Identity, dict[Journal, int]]  # for `_after_commit`
_CARRIED = 16  # signatures a caller's commit stores for the writer, once that many are ready
_KEEP_UP = 2.0  # seconds a caller that starts a new journal waits at most for a writer two journals behind
_JOURNAL_CAPACITY = 8 << 20  # bytes per journal file (≈ 20,000 records); a full one is replaced by a new file


class Appending(LedgerState):
    """The appending part of `Ledger`."""

    def transact(
        self, fn: Callable[[Txn], T], *, durable: bool = False, sign_now: bool = False, counting: bool = False
    ) -> T:
        """Run `fn` atomically against the ledger (see `Txn`) and return its result.

        `durable=True` commits synchronously even in background mode (approval requests need it);
        `sign_now=True` also signs inside the transaction (a key rotation must be signed by the old key);
        `counting=True`, in durable (journal) and background modes, commits at once only the window usage `fn`
        counts, so every process sees it before it decides, and puts its records through the journal (or queue) once
        that is committed, like every other record (a crash in between leaves a call counted that never ran: a
        window errs on the safe side).

        Raises:
            LedgerWriteError: the ledger cannot be written (fail closed); in background mode, once the
                writer has failed and until it recovers.
        """
        if self._closed:
            raise LedgerError(f"the ledger at {self.path} is closed")
        writer = self._writer
        if not self.background:
            return self._commit(fn, sign_now=sign_now)
        if writer.broken is not None and self.on_write_error == "closed":
            raise writer.broken
        if counting and not sign_now and (self.journaled or not durable):
            # A window's count is committed to SQLite at once, so that every process sees it before it
            # decides (else two processes could both take the last call of a window); the record is queued.
            deferred: list[tuple[str, str, dict[str, Any], bool]] = []
            result = self._commit(fn, sign_now=False, deferred=deferred)
            for kind, agent, fields, slow in deferred:
                self.enqueue(kind, agent, fields, slow=slow)
            return result
        if not durable and not sign_now and not self.journaled:
            with self._lock:
                return fn(Txn(self, None))
        # What the writer holds goes first, committed here rather than waited for: the chain keeps the order of
        # the calls, and this step does not wait for the writer thread to wake.
        with writer.taken() as earlier:
            return self._commit(fn, sign_now=sign_now, earlier=earlier)

    def _commit(
        self,
        fn: Callable[[Txn], T],
        *,
        sign_now: bool,
        earlier: list[Queued] | None = None,
        deferred: list[tuple[str, str, dict[str, Any], bool]] | None = None,
    ) -> T:
        """Run the step `fn`, then place what it appended (after `earlier`) and commit, all under the write lock."""
        with self._db.lock:
            txn = Txn(self, self._db, deferred=deferred)
            try:
                result = fn(txn)
            except BaseException as exc:
                self._db.rollback()
                if isinstance(exc, sqlite3.Error):
                    raise self._db._write_error(exc) from exc
                raise
            done = self._commit_items(txn.items, txn._conn is not None, txn.known, sign_now, earlier)
        self._after_commit(*done)
        return result

    def _append_now(self, kind: str, agent: str, fields: dict[str, Any], slow: bool) -> None:
        """Immediate mode: place and commit one record that counts nothing and asks nobody (a single INSERT)."""
        if self._closed:
            raise LedgerError(f"the ledger at {self.path} is closed")
        item = queued((kind, agent, fields, slow, self.clock(), token16(), (), None))
        if self._groups is not None:  # ledger_sync=full: callers at the same time share one fsync
            self._groups.commit(item)
            return
        self._commit_group([item])()

    def _commit_group(self, items: list[Queued]) -> Callable[[], None]:
        """Place and commit records that count nothing and ask nobody, in one transaction; then `_after_commit`."""
        with self._db.lock:
            done = self._commit_items(items, False, {}, False, None)
        return functools.partial(self._after_commit, *done)

    def _commit_items(
        self,
        own: list[Queued],
        opened: bool,
        known: dict[str, Last | None],
        sign_now: bool,
        earlier: list[Queued] | None,
    ) -> Committed:
        """Place `earlier` then `own` at the chain head, with the signatures the writer has ready, and commit.

        The caller holds the write lock, and passes what this returns to `_after_commit` once it lets go of it;
        `opened`: a transaction is open already (the step counted or asked). One record, nothing else to write: a
        single INSERT, its own transaction (no BEGIN and COMMIT round trips).
        """
        db, writer = self._db, self._writer
        writer.caller_committed = time.monotonic()  # the writer keeps its groups short, and its signatures for us
        ready = writer.take_ready(_CARRIED) if len(writer._ready) >= _CARRIED else None  # 1 commit in 16 or so
        items = [*earlier, *own] if earlier else own
        identity = self._identity  # the key every record of this transaction names (see `rotate`)
        marks: dict[Journal, int] = {}
        staged: list[Staged] = []
        signatures: list[bytes] = []
        try:
            if not opened and (ready or sign_now or len(items) > 1 or (items and items[0].usage)):
                db.begin()
                opened = True
            conn = db.conn
            if ready:  # signatures the writer made: stored by this commit (many rows in one INSERT are cheap)
                conn.executemany(INSERT_SIG, ready)
            if items:
                staged, signatures = self._place(conn, items, identity, sign_now, known)
                if earlier:
                    marks = journal_marks(earlier)
                    store_marks(conn, marks)
            if opened:
                db.commit()
        except BaseException as exc:
            db.rollback()
            self._head_cache = None
            if ready:
                writer.give_back(ready)
            if isinstance(exc, sqlite3.Error):
                raise db._write_error(exc) from exc
            raise
        if staged:
            self._head_cache = (staged[-1][0], staged[-1][1].hex())
        return staged, signatures, identity, marks

    def _place(
        self,
        conn: sqlite3.Connection,
        items: list[Queued],
        identity: Identity,
        sign_now: bool,
        known: dict[str, Last | None],
    ) -> tuple[list[Staged], list[bytes]]:
        """Place `items` at the chain head (the way the writer does, `stage`), count their usage, sign if asked.

        The head this process last committed is trusted optimistically: seq is the primary key, so if another
        process appended meanwhile, the first INSERT fails and the group is staged again after the new head.
        """
        head = self._head_cache or self._head_for_append(conn)
        keep = self._on_written is not None
        while True:
            staged = stage(items, head, self._body, self.recipes, keep=keep)
            try:
                insert(conn, staged, identity.public_key, None if sign_now else self.mac)
                break
            except sqlite3.IntegrityError:  # another process appended since we last looked: place after it
                fresh = self._head_for_append(conn)
                if fresh == head:
                    raise
                head = fresh
        signatures: list[bytes] = []
        if sign_now:
            signatures = sign_many(identity, [digest for _, digest, *_ in staged])
            conn.executemany(INSERT_SIG, [(seq, sig) for (seq, *_), sig in zip(staged, signatures, strict=True)])
        usage = usage_rows(items)
        if usage:
            add_usage(conn, usage, known)
        return staged, signatures

    def rotate(self, new: Identity, agent: str, fields: dict[str, Any]) -> None:
        """Append the `key_rotation` record (signed by the current key) and switch to `new`, as one step.

        No record can land between the two with the wrong key: the writer is held still (what it had queued is
        committed first, under the old key) and the process's ledger lock is held until the switch; records
        committed before it and not signed yet are still signed by the old key (`Writer.sign_later`).
        """
        with self._writer.taken() as earlier, self._db.lock:
            self._commit(lambda txn: txn.append("key_rotation", agent, fields), sign_now=True, earlier=earlier or None)
            self.identity = new

    def enqueue(
        self,
        kind: str,
        agent: str,
        fields: dict[str, Any] | Recipe,
        *,
        slow: bool = False,
    ) -> None:
        """Durable (journal) and background modes: queue one record that needs nothing counted in the same step.

        In durable mode the record is in this process's journal when this returns (see `_journal.py`).

        `fields` may be a recipe (a tuple of plain values) that the writer turns into `(fields, slow)` with
        `recipes[kind]`, so the caller does not pay for it; only for values that cannot change meanwhile.

        Raises:
            LedgerWriteError: the writer has failed and `on_write_error` is `closed`.
        """
        writer = self._writer
        if not self.background:
            raise LedgerError("enqueue is for background mode; use transact")
        if self._closed:  # its writer has stopped: the record would be dropped without a word
            raise LedgerError(f"the ledger at {self.path} is closed")
        if writer.broken is not None and self.on_write_error == "closed":
            raise writer.broken
        if self._journal is None:
            writer.put(queued((kind, agent, fields, slow, self.clock(), token16(), (), None)))
            return
        if self._forked:  # a write error: callers fail closed (or run, logged, with ledger_on_error=open)
            raise LedgerWriteError(
                "this ledger was opened before the process forked; its journal belongs to the parent process: "
                "open the ledger again in this process (a Hashed does so by itself)"
            )
        ts, nonce = self.clock(), token16()
        try:
            payload = orjson.dumps((kind, agent, fields, slow, ts, nonce), default=prepared_default)
        except TypeError:  # a value JSON cannot carry exactly (bytes, a huge int): commit it the durable way
            self._commit_now(kind, agent, fields, slow)
            return
        payload = self.mac.seal_frame(payload)  # only the agent's own frames are ever committed (`_mac.py`)
        if not self._journal.append(payload):  # full: the next journal, under the lock
            self._append_to_next(payload)
            writer.keep_up(_KEEP_UP)
        writer.nudge()

    def _append_to_next(self, payload: bytes) -> None:
        """Seal the full journal and go on in a new one (the writer deletes the old one once it is committed).

        Raises:
            LedgerWriteError: no new journal can be created (a full disk).
        """
        with self._journal_lock:
            while True:
                old = self._journal
                assert old is not None  # noqa: S101 - journal mode only
                if old.append(payload):  # another thread made the new one meanwhile
                    return
                if self._closed:
                    raise LedgerError(f"the ledger at {self.path} is closed")
                new = self._start_journal(2 * len(payload) + 64)
                old.seal()  # before anyone appends to the new one: a thread's frames stay in order
                self._journal = new

    def _commit_now(self, kind: str, agent: str, fields: dict[str, Any] | Recipe, slow: bool) -> None:
        built, slow = built_fields(kind, fields, slow, self.recipes)
        self.transact(lambda txn: txn.append(kind, agent, built, slow=slow), durable=True)

    def _after_commit(
        self, staged: list[Staged], signatures: list[bytes], identity: Identity, marks: dict[Journal, int]
    ) -> None:
        """Tell the writer what to sign and how far the journals are committed, then the observer (no lock held)."""
        if marks:
            self._writer.committed(marks)
        if staged and not signatures:
            self._writer.sign_later([(seq, digest, identity) for seq, digest, _, _, _ in staged])
        observer = self._on_written
        if observer is not None:
            for n, (seq, digest, item, data, body) in enumerate(staged):
                sig = signatures[n].hex() if signatures else None
                record = body if body is not None else orjson.loads(data)  # an observer that came meanwhile
                observer(LedgerRecord(seq, item.kind, record, digest.hex(), sig))

    def set_observer(self, observer: Callable[[LedgerRecord], None] | None) -> None:
        """Who is told about every committed record (the core's sink hook), or nobody."""
        self._on_written = observer

    def _body(
        self, seq: int, prev: str, ts: int, nonce: str, kind: str, agent: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "seq": seq,
            "prev": prev,
            "ts": str(ts),
            "nonce": nonce,
            "kind": kind,
            "key": self.identity.public_key,
            "agent": agent,
            **fields,
        }

    def _start_journal(self, at_least: int = 0) -> Journal:
        """A new journal for this process's records, which the writer reads after every journal before it."""
        journal = self._journal_type.create(self.journals, max(_JOURNAL_CAPACITY, at_least))
        self._writer.follow(journal)
        return journal
