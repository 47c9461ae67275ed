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

Every record is placed one way (`_group_commit.stage`, by the writer thread or by a caller's step under the
same lock, after what the writer still holds) and signed by one signer, the writer's: records a caller committed
are signed within tens of milliseconds (`Writer.sign_later`); records a crash left unsigned are sealed the next
time the ledger opens (`_signer.seal_unsigned`), or by a live process of the agent within seconds. Until then
each unsigned row, and each journal frame, carries a MAC under a key only the agent can derive (`_mac.py`): the
ledger never signs, nor commits from a journal, what this agent did not write itself, and it refuses to open on a
chain head that is neither signed nor authenticated.

`Ledger` is one class written in five modules: this one opens and closes it, `_recording.py` takes the core's
records and chooses how each is committed, `_appending.py` appends, `_opening.py` checks the chain head and
commits dead processes' journals, `_reading.py` reads back.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from hashed.errors import LedgerError
from hashed.identity import Identity
from hashed.ledger._checkpoints import sign_ledger_checkpoint
from hashed.ledger._commit_group import CommitGroups
from hashed.ledger._db import Database
from hashed.ledger._free_threading import journal_type
from hashed.ledger._journal import journal_dir
from hashed.ledger._mac import Macs
from hashed.ledger._opening import Opening
from hashed.ledger._queued import Recipes
from hashed.ledger._reading import Reading
from hashed.ledger._recording import Recording
from hashed.ledger._sign_service import SigningPipeline
from hashed.ledger._state import Clock
from hashed.ledger._txn import Txn
from hashed.ledger._writer import JOURNAL_POLL, Writer
from hashed.types import LedgerRecord

__all__ = ["Ledger", "Txn"]

_log = logging.getLogger("hashed.ledger")


class Ledger(Recording, Opening, Reading):
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
        self._read = None
        self._closed = False
        self._head_cache = None  # the chain head as of this process's last commit (`LedgerState`)
        self.recipes = dict(recipes or {})
        with self._db.lock:
            self._check_head(self._db.conn)  # refuses to chain onto a record someone else wrote
            self._head_for_append(self._db.conn)  # refuses a ledger that belongs to another key
        self.seal()
        self._writer = Writer(
            self._db,
            head=self._head_for_append,
            body=self._body,
            pipeline=lambda: SigningPipeline(self.identity),
            key=lambda: self.identity.public_key,
            mac=lambda: self.mac,
            identity=lambda: self.identity,
            on_error=on_write_error,
            observer=lambda: self._on_written,
            recipes=self.recipes,
            name=f"hashed-ledger-{path.name}",
            poll=JOURNAL_POLL if journal else None,
        )
        full = not self.background and synchronous.upper() != "NORMAL"
        self._groups = CommitGroups(self._commit_group) if full else None
        self.journals = journal_dir(path)
        self.replay_journals()
        self._journal_type = journal_type()  # with the GIL, appends take no lock (see `_free_threading.py`)
        self._journal = self._start_journal() if journal else None
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
        self._writer.close(timeout)
        try:  # signatures are stored now: a signed checkpoint over them (what a hash chain cannot show)
            sign_ledger_checkpoint(self._db, self.identity)
        except (LedgerError, sqlite3.Error):
            _log.exception("hashed: no checkpoint signed at close; the next close signs one")
        journal = self._journal
        if journal is not None:
            if self._writer.committed_through(journal) >= journal.end:
                journal.discard()
            else:
                journal.close()  # the next process that opens the ledger commits the rest
        if self._read is not None:
            self._read.close()
        self._db.close()


_ledgers: weakref.WeakSet[Ledger] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for ledger in list(_ledgers):
        ledger._forked = True  # appending to the parent's mapping would overwrite the parent's frames
        # Let go of the copies of the parent's journals (unmap, close; never truncate): else this child would hold
        # their locks after the parent died, and the next opener could not commit them until the child exits.
        for journal in {ledger._journal, *ledger._writer.journals}:
            if journal is not None:
                journal.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
