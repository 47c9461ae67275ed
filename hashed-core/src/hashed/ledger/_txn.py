"""A caller's atomic step against the ledger: read window usage, count usage, append records.

`Ledger.transact` hands one to the caller's function; whether it opens a SQLite transaction, journals or queues
what is appended depends on the ledger's durability mode (see `_recording.py`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from hashed._random import token16
from hashed.ledger._db import Database
from hashed.ledger._queued import Queued, queued
from hashed.ledger._usage import Last, add_usage, usage_since

if TYPE_CHECKING:
    from hashed.ledger._state import LedgerState

__all__ = ["Txn"]


class Txn:
    """What a caller may do atomically with the ledger: read window usage, add usage, append records.

    It places nothing itself: the records it is given are placed when the step commits (`Appending._commit`), after
    whatever the writer still held, the one way every record is placed (`_group_commit.stage`). Its SQLite
    transaction is opened only when the step reads or counts usage or asks for approval: a step that only appends
    one record is a single INSERT, its own transaction. In background mode reads see committed usage plus what this
    process has queued, and writes are queued.
    """

    def __init__(
        self,
        ledger: LedgerState,
        db: Database | None,
        *,
        deferred: list[tuple[str, str, dict[str, Any], bool]] | None = None,
    ) -> None:
        self._ledger = ledger
        self._db = db
        self._deferred = deferred  # durable (journal) mode: records wait here and go to the journal after commit
        self._conn: sqlite3.Connection | None = None
        self._usage: list[tuple[str, float]] = []
        self.known: dict[str, Last | None] = {}  # scopes' last usage rows read in this step (`add_usage`)
        self.items: list[Queued] = []  # the records to place when the step commits

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection of this transaction (durable, opened now), or the read connection (background)."""
        return self._open() if self._db is not None else self._ledger._reader()

    def _open(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            assert self._db is not None  # noqa: S101 - only durable transactions open one
            conn = self._conn = self._db.begin()
        return conn

    def usage(self, scope: str, since_ns: int) -> tuple[int, float]:
        """Calls and summed amount recorded for `scope` since `since_ns`."""
        count, total, last = usage_since(self.conn, scope, since_ns)
        self.known[scope] = last
        writer = self._ledger._writer
        if self._db is None:
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
                add_usage(self._open(), [(scope, ts, amount) for scope, amount in usage], self.known)
                self.known = {}
            self._deferred.append((kind, agent, fields, slow))
            return
        item = queued((kind, agent, fields, slow, ts, token16(), usage, None))
        if self._db is None:
            ledger._writer.put(item)
        else:
            self.items.append(item)
