"""The agent's ledger: appending records to the chain, in durable or background mode, and reading them back.

Durable mode (the default). A guarded call's records are appended inside one `BEGIN IMMEDIATE` transaction
that reads the chain head, places the record, hashes it and commits (WAL, synchronous=NORMAL: survives a
killed process). Signing (≈ 20 µs) happens right after on a signer thread, which PyNaCl lets run beside the
caller without the GIL; records a crash left unsigned are sealed the next time the ledger opens.

Background mode. The caller only queues the record; a writer thread places, hashes, signs and commits queued
records in groups. A crash may lose the last milliseconds of records.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from hashed.errors import ChainBrokenError, LedgerError, LedgerWriteError
from hashed.identity import Identity
from hashed.ledger._canonical import JsonNumber, encode_prepared
from hashed.ledger._db import Database
from hashed.ledger._record import GENESIS, PROTOCOL_VERSION, leaf_hash, signing_message
from hashed.ledger._verify import ChainVerifier, VerifyReport
from hashed.types import LedgerRecord

__all__ = ["Ledger", "Txn"]

_log = logging.getLogger("hashed.ledger")
T = TypeVar("T")
Clock = Callable[[], int]
_INSERT = "INSERT INTO records (seq, hash, key, kind, ts, body, sig) VALUES (?, ?, ?, ?, ?, ?, ?)"
_HEAD = "SELECT seq, hash, key, kind, body FROM records ORDER BY seq DESC LIMIT 1"
_USAGE = "SELECT count(*), total(amount) FROM usage WHERE scope = ? AND ts >= ?"


@dataclass(frozen=True, slots=True)
class _Queued:
    kind: str
    agent: str
    fields: dict[str, Any]
    slow: bool
    ts: int
    nonce: str
    usage: tuple[tuple[str, float], ...]


def _log_lost(item: _Queued, why: str) -> None:
    """Never drop a record silently: when it cannot be committed, its content goes to the error log."""
    document = {"kind": item.kind, "agent": item.agent, "ts": str(item.ts), "nonce": item.nonce, **item.fields}
    text = orjson.dumps(document, default=lambda o: o.fragment if isinstance(o, JsonNumber) else str(o)).decode()
    _log.error("hashed: %s; the record is kept only in this log: %s", why, text)


class Txn:
    """What a caller may do atomically with the ledger: read window usage, add usage, append records.

    In durable mode everything happens in one SQLite transaction; in background mode reads see committed
    usage plus what this process has queued, and writes are queued.
    """

    def __init__(self, ledger: Ledger, conn: sqlite3.Connection | None, *, sign_now: bool = False) -> None:
        self._ledger = ledger
        self._conn = conn
        self._sign_now = sign_now
        self._head: tuple[int, str] | None = None
        self._usage: list[tuple[str, float]] = []
        self.appended: list[tuple[int, bytes, str, dict[str, Any], bytes | None]] = []

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection of this transaction (durable), or the read connection (background)."""
        return self._conn if self._conn is not None else self._ledger._reader()

    def usage(self, scope: str, since_ns: int) -> tuple[int, float]:
        """Calls and summed amount recorded for `scope` since `since_ns`."""
        count, total = self.conn.execute(_USAGE, (scope, since_ns)).fetchone()
        count, total = int(count), float(total)
        if self._conn is None:
            extra_count, extra_total = self._ledger._queued_usage(scope, since_ns)
            count, total = count + extra_count, total + extra_total
        for name, amount in self._usage:
            if name == scope:
                count, total = count + 1, total + amount
        return count, total

    def add_usage(self, scope: str, amount: float) -> None:
        """Count one call (with `amount`) against `scope`, committed with the next appended record."""
        self._usage.append((scope, amount))

    def append(self, kind: str, agent: str, fields: dict[str, Any], *, slow: bool = False) -> None:
        """Append one record of `kind`; `fields` must already be prepared JSON (see `record_args`)."""
        ledger = self._ledger
        ts = ledger.clock()
        nonce = os.urandom(16).hex()
        usage, self._usage = tuple(self._usage), []
        if self._conn is None:
            ledger._enqueue(_Queued(kind, agent, fields, slow, ts, nonce, usage))
            return
        if self._head is None:
            self._head = ledger._head_for_append(self._conn)
        seq, prev = self._head[0] + 1, self._head[1]
        body = ledger._body(seq, prev, ts, nonce, kind, agent, fields)
        data = encode_prepared(body, slow)
        digest = leaf_hash(data)
        sig = ledger.identity.sign(signing_message(digest)) if self._sign_now else None
        self._conn.execute(_INSERT, (seq, digest, ledger.identity.public_key, kind, ts, data, sig))
        if usage:
            self._conn.executemany(
                "INSERT INTO usage (scope, ts, amount) VALUES (?, ?, ?)", [(s, ts, a) for s, a in usage]
            )
        self._head = (seq, digest.hex())
        self.appended.append((seq, digest, kind, body, sig))


class Ledger:
    """One agent's append-only, hash-chained, signed ledger in a SQLite file."""

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
    ) -> None:
        self.path = path
        self.identity = identity
        self.clock = clock
        self.background = background
        self.on_write_error = on_write_error
        self._on_written = on_written
        self._db = Database(path, synchronous=synchronous)
        self._lock = threading.RLock()
        self._read: sqlite3.Connection | None = None
        self._closed = False
        self._broken: LedgerWriteError | None = None
        self._to_sign: collections.deque[tuple[int, bytes]] = collections.deque()
        self._queue: collections.deque[_Queued] = collections.deque()
        self._queued_scopes: collections.Counter[str] = collections.Counter()
        self._wake = threading.Condition()
        self._idle = threading.Condition()
        self._inflight = 0
        with self._db.lock:
            self._head_for_append(self._db.conn)  # refuses a ledger that belongs to another key
        self.seal()
        target = self._write_loop if background else self._sign_loop
        self._thread = threading.Thread(target=target, name=f"hashed-ledger-{path.name}", daemon=True)
        self._thread.start()

    # -- appending -------------------------------------------------------------------------------------

    def transact(self, fn: Callable[[Txn], T], *, durable: bool = False, sign_now: bool = False) -> T:
        """Run `fn` atomically against the ledger (see `Txn`) and return its result.

        `durable=True` commits synchronously even in background mode (approval requests need it);
        `sign_now=True` also signs inside the transaction (a key rotation must be signed by the old key).

        Raises:
            LedgerWriteError: the ledger cannot be written (fail closed); in background mode, once the
                writer has failed and until it recovers.
        """
        if self._closed:
            raise LedgerError(f"the ledger at {self.path} is closed")
        if self.background:
            if self._broken is not None and self.on_write_error == "closed":
                raise self._broken
            if not durable and not sign_now:
                with self._lock:
                    return fn(Txn(self, None))
        with self._lock, self._db.write() as conn:
            txn = Txn(self, conn, sign_now=sign_now or self.background)
            result = fn(txn)
        if txn.appended:
            self._after_commit(txn.appended)
        return result

    def _after_commit(self, appended: list[tuple[int, bytes, str, dict[str, Any], bytes | None]]) -> None:
        unsigned = [(seq, digest) for seq, digest, _, _, sig in appended if sig is None]
        if unsigned:
            with self._wake:
                self._to_sign.extend(unsigned)
                self._wake.notify()
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
        seq, digest, key, kind, body = row
        if kind == "key_rotation":
            key = orjson.loads(body)["new_key"]
        if key != self.identity.public_key:
            raise LedgerError(
                f"the ledger at {self.path} continues with key {key[:16]}…, but this process holds "
                f"{self.identity.public_key[:16]}…: use the agent key that wrote it"
            )
        return int(seq), bytes(digest).hex()

    # -- signing (durable mode) ------------------------------------------------------------------------

    def seal(self) -> int:
        """Sign every record of this key still unsigned (after a crash, or another process's); returns how many."""
        sealed = 0
        while True:
            with self._db.lock:
                rows = self._db.conn.execute(
                    "SELECT seq, hash FROM records WHERE sig IS NULL AND key = ? ORDER BY seq LIMIT 1000",
                    (self.identity.public_key,),
                ).fetchall()
            if not rows:
                return sealed
            self._store_signatures([(seq, bytes(digest)) for seq, digest in rows])
            sealed += len(rows)

    def _store_signatures(self, batch: Sequence[tuple[int, bytes]]) -> None:
        sign = self.identity.sign
        updates = [(sign(signing_message(digest)), seq) for seq, digest in batch]
        with self._db.write() as conn:
            conn.executemany("UPDATE records SET sig = ? WHERE seq = ? AND sig IS NULL", updates)

    def _sign_loop(self) -> None:
        while True:
            with self._wake:
                while not self._to_sign and not self._closed:
                    self._wake.wait()
                batch = [self._to_sign.popleft() for _ in range(min(len(self._to_sign), 1024))]
                self._inflight = len(batch)
            if batch:
                try:
                    self._store_signatures(batch)
                except LedgerWriteError:
                    _log.exception("hashed: cannot store signatures; records stay unsigned until the next start")
                    if self._closed:
                        return
                    time.sleep(0.5)
                    with self._wake:
                        self._to_sign.extendleft(reversed(batch))
            self._done()
            if self._closed and not self._to_sign:
                return

    # -- background writer -----------------------------------------------------------------------------

    def _enqueue(self, item: _Queued) -> None:
        with self._wake:
            self._queue.append(item)
            for scope, _ in item.usage:
                self._queued_scopes[scope] += 1
            self._wake.notify()

    def _queued_usage(self, scope: str, since_ns: int) -> tuple[int, float]:
        if not self._queued_scopes.get(scope):
            return 0, 0.0
        with self._wake:
            items = list(self._queue)
        count, total = 0, 0.0
        for item in items:
            for name, amount in item.usage:
                if name == scope and item.ts >= since_ns:
                    count, total = count + 1, total + amount
        return count, total

    def _write_loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                batch = list(itertools.islice(self._queue, 2048))
                self._inflight = len(batch)
            if batch:
                self._write_batch(batch)
            self._done()
            if self._closed and (not self._queue or self._broken is not None):
                return

    def _write_batch(self, batch: list[_Queued]) -> None:
        try:
            with self._db.write() as conn:
                seq, prev = self._head_for_append(conn)
                rows: list[tuple[int, bytes, str, str, int, bytes, bytes]] = []
                usage: list[tuple[str, int, float]] = []
                written: list[LedgerRecord] = []
                for item in batch:
                    seq += 1
                    body = self._body(seq, prev, item.ts, item.nonce, item.kind, item.agent, item.fields)
                    data = encode_prepared(body, item.slow)
                    digest = leaf_hash(data)
                    sig = self.identity.sign(signing_message(digest))
                    rows.append((seq, digest, self.identity.public_key, item.kind, item.ts, data, sig))
                    usage.extend((scope, item.ts, amount) for scope, amount in item.usage)
                    prev = digest.hex()
                    written.append(LedgerRecord(seq, item.kind, body, prev, sig.hex()))
                conn.executemany(_INSERT, rows)
                if usage:
                    conn.executemany("INSERT INTO usage (scope, ts, amount) VALUES (?, ?, ?)", usage)
        except LedgerWriteError as exc:
            self._writer_failed(exc, batch)
            return
        self._broken = None
        self._dequeue(batch)
        observer = self._on_written
        if observer is not None:
            for record in written:
                observer(record)

    def _writer_failed(self, exc: LedgerWriteError, batch: list[_Queued]) -> None:
        if self.on_write_error == "open":
            for item in batch:
                _log_lost(item, f"ledger write failed ({exc})")
            self._dequeue(batch)
            return
        if self._broken is None:
            _log.error("hashed: ledger write failed, guarded calls are refused until it recovers: %s", exc)
        self._broken = exc
        time.sleep(0.2)

    def _dequeue(self, batch: list[_Queued]) -> None:
        with self._wake:
            for item in batch:
                self._queue.popleft()
                for scope, _ in item.usage:
                    self._queued_scopes[scope] -= 1

    # -- reading ---------------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        if self._read is None:
            self._read = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        return self._read

    def _done(self) -> None:
        with self._wake:
            self._inflight = 0
        with self._idle:
            self._idle.notify_all()

    def _busy(self) -> bool:
        with self._wake:
            return bool(self._to_sign or self._queue or self._inflight)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is committed and signed; False if `timeout` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._busy():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(0.05 if remaining is None else min(0.05, remaining))
        return True

    def records(self, start: int = 1, end: int | None = None) -> Iterator[LedgerRecord]:
        """Records from `start` to `end` (inclusive) in order, read in pages."""
        seq = start - 1
        while True:
            with self._db.lock:
                rows = self._db.conn.execute(
                    "SELECT seq, kind, body, hash, sig FROM records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 1000",
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
        with self._db.lock:
            row = self._db.conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]).hex())

    def verify(self, key: str | None = None) -> VerifyReport:
        """Verify the whole ledger (unsigned records allowed: a live ledger signs within milliseconds)."""
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
        self.flush(timeout)
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout)
        with self._wake:
            lost = list(self._queue)
        for item in lost:
            _log_lost(item, "ledger closed before the record could be written")
        if self._read is not None:
            self._read.close()
        self._db.close()
