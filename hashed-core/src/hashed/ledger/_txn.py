"""A caller's atomic step against the ledger: read window usage, count usage, append records.

`Ledger.transact` hands one to the caller's function; whether it opens a SQLite transaction, journals or queues
what is appended depends on the ledger's durability mode (see `_store.py`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from hashed._random import token16
from hashed.ledger._db import Database
from hashed.ledger._queued import Queued
from hashed.ledger._signer import UPDATE_SIG
from hashed.ledger._usage import add_usage, usage_since
from hashed.protocol._canonical import encode_prepared
from hashed.protocol._record import leaf_hash, signing_message

if TYPE_CHECKING:
    from hashed.ledger._state import LedgerState

__all__ = ["Appended", "Txn"]

_INSERT = "INSERT INTO records (seq, hash, key, kind, ts, body, mac) VALUES (?, ?, ?, ?, ?, ?, ?)"
Appended = tuple[int, bytes, str, dict[str, Any], "bytes | None"]
Placing = tuple[str, str, dict[str, Any], bool, int, str, tuple[tuple[str, float], ...]]


class Txn:
    """What a caller may do atomically with the ledger: read window usage, add usage, append records.

    In durable mode everything happens in one SQLite transaction, opened only when needed: a step that just
    appends one record (most guarded calls) is a single INSERT, its own transaction, which saves the BEGIN
    and COMMIT round trips. In background mode reads see committed usage plus what this process has queued,
    and writes are queued.
    """

    def __init__(
        self,
        ledger: LedgerState,
        db: Database | None,
        *,
        sign_now: bool = False,
        signatures: list[tuple[bytes, int]] | None = None,
        deferred: list[tuple[str, str, dict[str, Any], bool]] | None = None,
    ) -> None:
        self._ledger = ledger
        self._db = db
        self._deferred = deferred  # durable (journal) mode: records wait here and go to the journal after commit
        self._conn: sqlite3.Connection | None = None
        self._sign_now = sign_now
        self._signatures = signatures
        self._alone: Placing | None = None  # one append, placed on its own at the end unless more follows
        self._head: tuple[int, str] | None = None
        self._usage: list[tuple[str, float]] = []
        self._known: dict[str, tuple[int, float, int] | None] = {}
        self.appended: list[Appended] = []

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection of this transaction (durable, opened now), or the read connection (background)."""
        return self._open() if self._db is not None else self._ledger._reader()

    def _open(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            assert self._db is not None  # noqa: S101 - only durable transactions open one
            conn = self._conn = self._db.begin()
            if self._signatures:
                conn.executemany(UPDATE_SIG, self._signatures)
            if self._alone is not None:
                alone, self._alone = self._alone, None
                self._place(conn, *alone)
        return conn

    def _finish(self) -> None:
        """Commit: the open transaction, or the single record placed alone (autocommit)."""
        db = self._db
        if db is None:
            return
        if self._alone is not None:
            alone, self._alone = self._alone, None
            self._place(db.conn, *alone)
        elif self._conn is not None:
            db.commit()

    def _abort(self) -> None:
        self._alone = None
        if self._db is not None and self._conn is not None:
            self._db.rollback()

    def usage(self, scope: str, since_ns: int) -> tuple[int, float]:
        """Calls and summed amount recorded for `scope` since `since_ns`."""
        count, total, last = usage_since(self.conn, scope, since_ns)
        self._known[scope] = last
        writer = self._ledger._writer
        if self._db is None and writer is not None:
            queued_count, queued_total = writer.queued_usage(scope, since_ns)
            count, total = count + queued_count, total + queued_total
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
        usage, self._usage = tuple(self._usage), []
        if self._deferred is not None:  # its time and nonce are drawn when it is journaled
            if usage:  # counted now, in this transaction, so that every process sees it at once
                add_usage(self._open(), [(scope, ts, amount) for scope, amount in usage], self._known)
                self._known = {}
            self._deferred.append((kind, agent, fields, slow))
            return
        nonce = token16()
        if self._db is None:
            assert ledger._writer is not None  # noqa: S101 - no database only in background mode
            ledger._writer.put(Queued(kind, agent, fields, slow, ts, nonce, usage))
            return
        placing: Placing = (kind, agent, fields, slow, ts, nonce, usage)
        if self._conn is None and self._alone is None and not (usage or self._signatures or self._sign_now):
            self._alone = placing
        else:
            self._place(self._open(), *placing)

    def _place_now(self, kind: str, agent: str, fields: dict[str, Any], slow: bool, ts: int, nonce: str) -> None:
        """Place a record whose time and nonce were fixed earlier (a journal's frame), in this transaction."""
        self._place(self._open(), kind, agent, fields, slow, ts, nonce, ())

    def _place(
        self,
        conn: sqlite3.Connection,
        kind: str,
        agent: str,
        fields: dict[str, Any],
        slow: bool,
        ts: int,
        nonce: str,
        usage: tuple[tuple[str, float], ...],
    ) -> None:
        ledger = self._ledger
        if self._head is None:
            self._head = ledger._head_cache or ledger._head_for_append(conn)
        while True:
            seq, prev = self._head[0] + 1, self._head[1]
            body = ledger._body(seq, prev, ts, nonce, kind, agent, fields)
            data = encode_prepared(body, slow)
            digest = leaf_hash(data)
            sig = ledger.identity.sign(signing_message(digest)) if self._sign_now else None
            mac = None if sig is not None else ledger.mac.row(digest)  # signed later: authenticated until then
            try:
                conn.execute(_INSERT, (seq, digest, ledger.identity.public_key, kind, ts, data, mac))
                break
            except sqlite3.IntegrityError:  # another process appended since we last looked: place after it
                fresh = ledger._head_for_append(conn)
                if fresh == self._head:
                    raise
                self._head = fresh
        if sig is not None:
            conn.execute(UPDATE_SIG, (sig, seq))
        if usage:
            add_usage(conn, [(scope, ts, amount) for scope, amount in usage], self._known)
            self._known = {}
        self._head = (seq, digest.hex())
        self.appended.append((seq, digest, kind, body, sig))
