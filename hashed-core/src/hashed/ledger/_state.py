"""What every part of `Ledger` shares, declared once: the attributes `Ledger.__init__` sets.

`Ledger` is one class written in five modules (`_store.py` opens and closes it, `_recording.py`, `_appending.py`,
`_opening.py`, `_reading.py`); each part reads this state through `self`, so an append goes through no more calls
than when they were one module. `Txn` sees a ledger through this type too.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from hashed.identity import Identity
    from hashed.ledger._commit_group import CommitGroups
    from hashed.ledger._db import Database
    from hashed.ledger._journal import Journal
    from hashed.ledger._mac import Macs
    from hashed.ledger._queued import Recipes
    from hashed.ledger._txn import Txn
    from hashed.ledger._writer import Writer
    from hashed.types import LedgerRecord

__all__ = ["Clock", "LedgerState"]

T = TypeVar("T")
Clock = Callable[[], int]


class LedgerState:
    """The attributes of a `Ledger` (annotations only: nothing here runs or costs anything per call)."""

    path: Path
    identity: Identity  # a property of `Ledger`: setting it derives `mac`
    _identity: Identity
    mac: Macs  # authenticates journal frames and unsigned rows (keyed by `identity`)
    clock: Clock
    background: bool  # journal mode queues too: the writer thread commits
    journaled: bool
    on_write_error: str
    recipes: Recipes  # how the background writer builds the fields of records queued as a recipe, by kind
    journals: Path  # the folder of this ledger's journals
    _on_written: Callable[[LedgerRecord], None] | None
    _db: Database
    _lock: threading.RLock
    _read: sqlite3.Connection | None
    _closed: bool
    # The chain head as of this process's last commit. Trusted optimistically: seq is the primary key, so if
    # another process appended meanwhile, inserting at head+1 fails and the head is read again.
    _head_cache: tuple[int, str] | None
    _writer: Writer  # in every mode: commits what is queued or journaled, signs every record
    _groups: CommitGroups | None  # immediate mode with synchronous FULL: concurrent callers share one fsync
    _journal: Journal | None
    _journal_type: type[Journal]  # decided once at open: lock-free appends with the GIL (`_free_threading.py`)
    _journal_lock: threading.Lock
    _forked: bool  # set in a child process: the journal and the writer thread belong to the parent

    if TYPE_CHECKING:

        def transact(
            self, fn: Callable[[Txn], T], *, durable: bool = False, sign_now: bool = False, counting: bool = False
        ) -> T:
            """Run `fn` atomically against the ledger (`Appending.transact`)."""

        def _body(
            self, seq: int, prev: str, ts: int, nonce: str, kind: str, agent: str, fields: dict[str, Any]
        ) -> dict[str, Any]:
            """A record's body, placed at `seq` after `prev` (`Appending._body`)."""

        def _head_for_append(self, conn: sqlite3.Connection) -> tuple[int, str]:
            """The chain head to append after (`Opening._head_for_append`)."""

        def _reader(self) -> sqlite3.Connection:
            """This process's read connection (`Reading._reader`)."""

        def flush(self, timeout: float | None = None) -> bool:
            """Wait until every queued record is committed and signed (`Reading.flush`)."""
