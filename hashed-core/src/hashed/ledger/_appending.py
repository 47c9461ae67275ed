"""Appending to the ledger: one step in a transaction, one queued or journaled record, a key rotation.

`transact` runs a step (`Txn`) atomically; `enqueue` queues or journals a record; `_store.py` says which the
durability mode uses when.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from hashed._random import token16
from hashed.errors import LedgerError, LedgerWriteError
from hashed.identity import Identity
from hashed.ledger._journal import Journal
from hashed.ledger._queued import Queued, Recipe, built_fields, journal_marks, store_marks
from hashed.ledger._state import LedgerState
from hashed.ledger._txn import Appended, Txn
from hashed.protocol._canonical import prepared_default
from hashed.protocol._record import PROTOCOL_VERSION
from hashed.types import LedgerRecord

__all__ = ["Appending"]

T = TypeVar("T")
_PIGGYBACK = 16  # signatures a caller's commit carries (appends to a small table: cheap in bulk)
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
        if writer is not None:
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
            if self.journaled:
                # What the journal holds goes first, committed here rather than waited for: the chain keeps
                # the order of the calls, and this step does not wait for the writer thread to wake.
                with writer.taken() as earlier:
                    return self._commit(fn, sign_now=sign_now, earlier=earlier)
        return self._commit(fn, sign_now=sign_now or writer is not None)

    def _commit(
        self,
        fn: Callable[[Txn], T],
        *,
        sign_now: bool,
        earlier: list[Queued] | None = None,
        deferred: list[tuple[str, str, dict[str, Any], bool]] | None = None,
    ) -> T:
        signer = self._signer
        signatures = signer.take_ready(_PIGGYBACK, at_least=_PIGGYBACK) if signer is not None else None
        marks: dict[Journal, int] = {}
        if self._writer is not None:
            self._writer.caller_committed = time.monotonic()  # the writer keeps its groups short meanwhile
        with self._db.lock:
            identity = self._identity  # the key every record of this transaction names (see `rotate`)
            txn = Txn(self, self._db, sign_now=sign_now, signatures=signatures, deferred=deferred)
            try:
                if earlier:
                    marks = self._place_earlier(txn, earlier)
                result = fn(txn)
                if signatures and txn._conn is None:
                    txn._open()  # carry the signatures even if `fn` appended nothing
                txn._finish()
            except BaseException as exc:
                txn._abort()
                self._head_cache = None
                if signer is not None and signatures:
                    signer.give_back(signatures)
                if isinstance(exc, sqlite3.Error):
                    raise self._db._write_error(exc) from exc
                raise
            if txn.appended:
                self._head_cache = txn._head
        if marks:
            assert self._writer is not None  # noqa: S101 - journal mode has a writer
            self._writer.committed(marks)
        if txn.appended:
            self._after_commit(txn.appended, identity)
        return result

    def rotate(self, new: Identity, agent: str, fields: dict[str, Any]) -> None:
        """Append the `key_rotation` record (signed by the current key) and switch to `new`, as one step.

        No record can land between the two with the wrong key: the writer is held still (what it had queued is
        committed first, under the old key) and the process's ledger lock is held until the switch; records
        committed before it and not signed yet are still signed by the old key (`Signer`).
        """
        writer = self._writer
        with writer.taken() if writer is not None else contextlib.nullcontext(None) as earlier, self._db.lock:
            self._commit(lambda txn: txn.append("key_rotation", agent, fields), sign_now=True, earlier=earlier or None)
            self.identity = new

    def _place_earlier(self, txn: Txn, earlier: list[Queued]) -> dict[Journal, int]:
        """Place journaled records still queued before this transaction's own; how far each journal got."""
        for item in earlier:
            fields, slow = built_fields(item.kind, item.fields, item.slow, self.recipes)
            txn._place_now(item.kind, item.agent, fields, slow, item.ts, item.nonce)
        marks = journal_marks(earlier)
        store_marks(txn.conn, marks)
        return marks

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
        if writer is None:
            raise LedgerError("enqueue is for background mode; use transact")
        if writer.broken is not None and self.on_write_error == "closed":
            raise writer.broken
        if self._journal is None:
            writer.put(Queued(kind, agent, fields, slow, self.clock(), token16(), ()))
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

    def _after_commit(self, appended: list[Appended], identity: Identity) -> None:
        if self._signer is not None:
            unsigned = [(seq, digest, identity) for seq, digest, _, _, sig in appended if sig is None]
            if unsigned:
                self._signer.committed(unsigned)
        observer = self._on_written
        if observer is not None:
            for seq, digest, kind, body, sig in appended:
                observer(LedgerRecord(seq, kind, body, digest.hex(), None if sig is None else sig.hex()))

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
        assert self._writer is not None  # noqa: S101 - journal mode queues through a writer
        self._writer.follow(journal)
        return journal
