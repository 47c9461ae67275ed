"""The agent's ledger: appending records to the chain, in three ways, and reading them back.

Journaled (`journal=True`: durable mode, the default). The caller appends each record to its process's
memory-mapped journal (`_journal.py`), which survives the process being killed: nothing is lost, and the caller
pays a memory copy instead of a commit. A writer thread places, hashes, signs and commits the records in groups
(`_writer.py`). A step that counts windows commits the count to SQLite at once and journals its record; one that
asks for approval commits at once. Whatever a killed process left in its journal is committed by the next
process that opens the ledger.

Immediate (neither flag: immediate mode, and durable mode with ledger_sync=full). A guarded call's record is
placed at the chain head this process last wrote, hashed and committed (WAL; synchronous=NORMAL survives a
killed process, FULL a power cut) before the call goes on: one INSERT when the step appends just that record,
else one `BEGIN IMMEDIATE` transaction (windows, approvals).

Background (`background=True`). The caller only queues the record; the writer thread commits queued records in
groups. A crash may lose the last tens of milliseconds of records.

Signatures of records committed in the caller follow in a batch within tens of milliseconds (`_signer.py`);
records a crash left unsigned are sealed the next time the ledger opens. Until then each unsigned row, and each
journal frame, carries a MAC under a key only the agent can derive (`_mac.py`): the ledger never signs, nor
commits from a journal, what this agent did not write itself, and it refuses to open on a chain head that is
neither signed nor authenticated.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

from hashed._random import token16
from hashed.errors import ChainBrokenError, LedgerError, LedgerWriteError
from hashed.identity import Identity
from hashed.ledger._checkpoints import sign_ledger_checkpoint
from hashed.ledger._db import Database, get_meta, set_meta
from hashed.ledger._journal import Journal, dead_journals, journal_dir
from hashed.ledger._mac import Macs
from hashed.ledger._sign_service import SigningPipeline
from hashed.ledger._signer import Signer, seal_unsigned
from hashed.ledger._txn import Appended, Txn
from hashed.ledger._writer import (
    JOURNAL_POLL,
    BackgroundWriter,
    ForgedFrameError,
    Queued,
    Recipe,
    Recipes,
    built_fields,
    from_frame,
    journal_marks,
    store_marks,
)
from hashed.protocol import verify_signature
from hashed.protocol._canonical import prepared_default
from hashed.protocol._record import GENESIS, PROTOCOL_VERSION
from hashed.protocol._verify import ChainVerifier, VerifyReport
from hashed.types import LedgerRecord

__all__ = ["Ledger", "Txn"]

_log = logging.getLogger("hashed.ledger")

T = TypeVar("T")
_PIGGYBACK = 16  # signatures a caller's commit carries (appends to a small table: cheap in bulk)
Clock = Callable[[], int]
_JOINED = "FROM records r LEFT JOIN signatures s ON s.seq = r.seq"
_HEAD = "SELECT seq, hash, key, kind FROM records ORDER BY seq DESC LIMIT 1"
_HEAD_PROOF = f"SELECT r.seq, r.hash, r.key, r.mac, s.sig {_JOINED} ORDER BY r.seq DESC LIMIT 1"


class Ledger:
    """One agent's append-only, hash-chained, signed ledger in a SQLite file."""

    mac: Macs  # authenticates journal frames and unsigned rows (keyed by `identity`)

    def __init__(
        self,
        path: Path,
        identity: Identity,
        *,
        clock: Clock = time.time_ns,
        background: bool = False,
        synchronous: str = "NORMAL",
        on_write_error: str = "closed",
        on_written: Callable[[LedgerRecord], None] | None = None,
        recipes: Recipes | None = None,
        journal: bool = False,
    ) -> None:
        self.path = path
        self.identity = identity
        self.clock = clock
        self.background = background or journal  # journal mode queues too: the writer thread commits
        self.journaled = journal
        self.on_write_error = on_write_error
        self._on_written = on_written
        self._db = Database(path, synchronous=synchronous)
        self._lock = threading.RLock()
        self._read: sqlite3.Connection | None = None
        self._closed = False
        # The chain head as of this process's last commit. Trusted optimistically: seq is the primary key, so if
        # another process appended meanwhile, inserting at head+1 fails and the head is read again.
        self._head_cache: tuple[int, str] | None = None
        # How the background writer builds the fields of records queued as a recipe, by kind (see `Queued`).
        self.recipes: Recipes = dict(recipes or {})
        with self._db.lock:
            self._check_head(self._db.conn)  # refuses to chain onto a record someone else wrote
            self._head_for_append(self._db.conn)  # refuses a ledger that belongs to another key
        self.seal()
        name = f"hashed-ledger-{path.name}"
        self._signer: Signer | None = None
        self._writer: BackgroundWriter | None = None
        if self.background:
            self._writer = BackgroundWriter(
                self._db,
                head=self._head_for_append,
                body=self._body,
                pipeline=lambda: SigningPipeline(self.identity),
                key=lambda: self.identity.public_key,
                mac=lambda: self.mac,
                on_error=on_write_error,
                observer=lambda: self._on_written,
                recipes=self.recipes,
                name=name,
                poll=JOURNAL_POLL if journal else None,
            )
        if not background:  # durable (journal) mode too: its approval steps commit in the caller, signed later
            self._signer = Signer(self._db, lambda: self.identity, name)
        self.journals = journal_dir(path)
        self.replay_journals()
        self._journal: Journal | None = None
        if journal:
            self._journal = Journal.create(self.journals, _JOURNAL_CAPACITY)
            assert self._writer is not None  # noqa: S101 - journal mode queues through a writer
            self._writer.follow(self._journal)
        self._journal_lock = threading.Lock()
        self._forked = False  # set in a child process: the journal and the writer thread belong to the parent
        _ledgers.add(self)

    @property
    def identity(self) -> Identity:
        """The agent's current key (a rotation replaces it)."""
        return self._identity

    @identity.setter
    def identity(self, identity: Identity) -> None:
        previous = getattr(self, "mac", None)
        self._identity = identity
        # Authenticates frames and unsigned rows (`_mac.py`); frames a caller sealed under the key a rotation
        # just replaced still open in this process.
        self.mac = Macs(identity.seed, previous=previous)

    # -- appending -------------------------------------------------------------------------------------

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
                new = Journal.create(self.journals, max(_JOURNAL_CAPACITY, 2 * len(payload) + 64))
                assert self._writer is not None  # noqa: S101 - journal mode has a writer
                self._writer.follow(new)
                old.seal()  # before anyone appends to the new one: a thread's frames stay in order
                self._journal = new

    def _commit_now(self, kind: str, agent: str, fields: dict[str, Any] | Recipe, slow: bool) -> None:
        built, slow = built_fields(kind, fields, slow, self.recipes)
        self.transact(lambda txn: txn.append(kind, agent, built, slow=slow), durable=True)

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
            fields, slow = built_fields(item.kind, item.fields, item.slow, self.recipes)
            txn._place_now(item.kind, item.agent, fields, slow, item.ts, item.nonce)
        set_meta(txn.conn, key, group[-1][0])

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

    # -- reading ---------------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        if self._read is None:
            self._read = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        return self._read

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is committed and signed; False if `timeout` ran out first."""
        workers = [w for w in (self._writer, self._signer) if w is not None]
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(worker.busy for worker in workers):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if deadline is None and self._writer is not None and self._writer.broken is not None:
                return False  # cannot make progress until the disk recovers
            for worker in workers:
                worker.hurry()
            time.sleep(0.001)
        return True

    @property
    def queued(self) -> int:
        """Records this process made that are not committed to the ledger yet (durable/journal and background)."""
        return 0 if self._writer is None else self._writer.queued

    def _caught_up(self) -> None:
        """Durable (journal) mode: let the writer commit this process's records first, so it reads its own calls.

        Background mode promises less, and does not wait.
        """
        writer = self._writer
        if self.journaled and writer is not None and not writer.on_writer_thread and not (self._closed or self._forked):
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

    def close(self, timeout: float | None = 10.0) -> None:
        """Commit and sign what is queued, then close; idempotent."""
        if self._closed:
            return
        if self._forked:  # a child's copy: the queue, journal and connection are its parent's, left untouched
            self._closed = True
            return
        self.flush(timeout)
        try:  # what forked workers ended by a signal left (Pool.terminate): committed now, not at the next start
            self.replay_journals()
        except LedgerError:
            _log.exception("hashed: journals left by other processes are committed at the next start instead")
        self._closed = True
        if self._signer is not None:
            self._signer.close(timeout)
        if self._writer is not None:
            self._writer.close(timeout)
        try:  # signatures are stored now: a signed checkpoint over them (what a hash chain cannot show)
            sign_ledger_checkpoint(self._db, self.identity)
        except (LedgerError, sqlite3.Error):
            _log.exception("hashed: no checkpoint signed at close; the next close signs one")
        journal = self._journal
        if journal is not None:
            assert self._writer is not None  # noqa: S101 - journal mode has a writer
            if self._writer.committed_through(journal) >= journal.end:
                journal.discard()
            else:
                journal.close()  # the next process that opens the ledger commits the rest
        if self._read is not None:
            self._read.close()
        self._db.close()


_READ_WAIT = 5.0  # seconds a read waits for the writer to commit this process's records (a stuck disk: read anyway)
_KEEP_UP = 2.0  # seconds a caller that starts a new journal waits at most for a writer two journals behind
_JOURNAL_CAPACITY = 8 << 20  # bytes per journal file (≈ 20,000 records); a full one is replaced by a new file


_ledgers: weakref.WeakSet[Ledger] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for ledger in list(_ledgers):
        ledger._forked = True  # appending to the parent's mapping would overwrite the parent's frames
        # Let go of the copies of the parent's journals (unmap, close; never truncate): else this child would hold
        # their locks after the parent died, and the next opener could not commit them until the child exits.
        writer = ledger._writer
        for journal in {ledger._journal, *(writer.journals if writer is not None else ())}:
            if journal is not None:
                journal.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
