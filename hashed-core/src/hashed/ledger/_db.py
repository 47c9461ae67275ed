"""The ledger's SQLite database: one file per agent, WAL mode, shared by every thread and process of the agent.

`records` has no secondary index on purpose: each index costs every commit a page write (≈ 4 µs). What
needs finding is found from watermarks in `meta` (`signed_through`, `shipped_through`) by rowid ranges.
Signatures, which arrive moments after their records, go to their own append-only table: writing them is an
append to a small B-tree, not an update of record pages written long before.

One connection per process, serialised by a lock: SQLite's own busy handler sleeps in milliseconds, so threads
of one process must never contend through it. Processes do, through `busy_timeout`, which is rare and fine.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from hashed.errors import LedgerError, LedgerWriteError

__all__ = ["SCHEMA_VERSION", "Database", "SQLiteError", "get_meta", "set_meta"]

# What reading a damaged file, or one that is not a ledger, raises: code outside the ledger package catches it
# by this name, and never imports sqlite3 (the ledger owns its database).
SQLiteError = sqlite3.Error

SCHEMA_VERSION = 2  # 2: records.mac, which authenticates a row until it is signed (see _mac.py)
_BUSY_MS = 10_000  # how long to wait for another process's lock (busy_timeout, and the WAL switch below)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq      INTEGER PRIMARY KEY,
    hash     BLOB    NOT NULL,
    key      TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    ts       INTEGER NOT NULL,
    body     BLOB    NOT NULL,
    mac      BLOB
);
CREATE TABLE IF NOT EXISTS signatures (
    seq      INTEGER PRIMARY KEY,
    sig      BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size     INTEGER PRIMARY KEY,
    note     TEXT    NOT NULL,
    subtrees BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    seq     INTEGER PRIMARY KEY,
    code    TEXT NOT NULL,
    reason  TEXT NOT NULL,
    at_ns   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    scope     TEXT    NOT NULL,
    ts        INTEGER NOT NULL,
    cum_count INTEGER NOT NULL,
    amount    REAL    NOT NULL,
    cum_sum   REAL    NOT NULL,
    PRIMARY KEY (scope, ts, cum_count)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approvals (
    id          TEXT PRIMARY KEY,
    call        TEXT NOT NULL,
    agent       TEXT NOT NULL,
    tool        TEXT NOT NULL,
    args        TEXT NOT NULL,
    args_digest TEXT NOT NULL,
    rule        TEXT,
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_ns  INTEGER NOT NULL,
    expires_ns  INTEGER NOT NULL,
    on_timeout  TEXT NOT NULL,
    decided_ns  INTEGER,
    decided_by  TEXT,
    comment     TEXT,
    consumed    INTEGER NOT NULL DEFAULT 0,
    remote_id   TEXT,
    answer      TEXT,
    answer_sig  TEXT
);
CREATE INDEX IF NOT EXISTS approvals_lookup ON approvals(agent, tool, args_digest, status);
"""


class Database:
    """A locked connection to one ledger file."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL", readonly: bool = False) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.refused: set[int] = set()  # unsigned rows this process refused to sign (logged once each)
        self._checkpointer: sqlite3.Connection | None = None
        try:
            if readonly:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")  # before any statement that reads the file
            if not readonly:
                self._setup(synchronous)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger at {path}: {exc} (check the path and its permissions)") from exc

    def _setup(self, synchronous: str) -> None:
        if synchronous.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise LedgerError(f"ledger synchronous={synchronous!r}: use NORMAL, FULL or EXTRA")
        mode = self._switch_to_wal()
        if mode != "wal":
            raise LedgerError(
                f"cannot put the ledger at {self.path} in WAL mode (got {mode}); is it on a network drive?"
            )
        self.conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger at {self.path} has schema {version}, newer than this hashed-core knows "
                f"({SCHEMA_VERSION}); upgrade hashed-core"
            )
        if version < SCHEMA_VERSION:
            with self.write():  # BEGIN IMMEDIATE: one process creates the schema, the others wait, then see it
                current = self.conn.execute("PRAGMA user_version").fetchone()[0]  # read again: another process
                if current == 1:
                    # Rows a version-1 process left unsigned carry no MAC: they are never signed (see _mac.py).
                    self.conn.execute("ALTER TABLE records ADD COLUMN mac BLOB")
                if current < SCHEMA_VERSION:
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        self.conn.execute(statement)
                    self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _switch_to_wal(self) -> str:
        """Put the file in WAL mode, waiting for other processes that are creating it at the same moment.

        SQLite answers `PRAGMA journal_mode = WAL` with "database is locked" at once, without calling the busy
        handler, while another connection holds the new file's write lock (it is creating the schema, or
        switching it to WAL itself): two agents starting together on a project with no ledger yet failed about
        1 time in 6 (issue #14, item 8). So: read the header first (that waits in the busy handler); switch only
        if the file is not in WAL mode yet, retrying with a short backoff for as long as `busy_timeout`.
        """
        conn = self.conn
        conn.execute("PRAGMA user_version").fetchone()  # reads the header: a WAL file opens in WAL mode
        deadline = time.monotonic() + _BUSY_MS / 1000
        pause = 0.001
        while True:
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode == "wal":
                return mode
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def checkpoint(self) -> None:
        """Copy committed WAL frames into the database file without blocking writers (PASSIVE).

        The ledger's own thread calls this often, on a connection of its own, so that when a committing caller
        reaches SQLite's automatic checkpoint (1,000 pages of WAL) nearly everything is copied already and the
        caller's checkpoint is cheap: the copying happens beside the caller, not in its way.
        """
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._checkpointer.execute("PRAGMA busy_timeout = 1000")
        try:
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # all: frees the statement
        except sqlite3.Error:  # a checkpoint is housekeeping: the next one catches up
            return

    def begin(self) -> sqlite3.Connection:
        """Start a write transaction; the caller holds `lock` and ends it with `commit` or `rollback`."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._write_error(exc) from exc
        return self.conn

    def commit(self) -> None:
        """Commit the transaction `begin` started (rolled back if the commit itself fails)."""
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.rollback()
            raise self._write_error(exc) from exc

    def rollback(self) -> None:
        """Undo the transaction `begin` started, if it is still open."""
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT) under the process lock.

        Raises:
            LedgerWriteError: the disk is full, the file is read-only, or the database stays locked.
        """
        with self.lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._write_error(exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._write_error(exc) from exc
                raise

    def _write_error(self, exc: sqlite3.Error) -> LedgerWriteError:
        return LedgerWriteError(
            f"cannot write the ledger at {self.path}: {exc}. Free disk space, fix the file's permissions, "
            "or stop the process holding its lock"
        )

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self.lock, contextlib.suppress(sqlite3.Error):
            if self._checkpointer is not None:
                self._checkpointer.close()
            self.conn.close()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    return code & 0xFF == 5 if isinstance(code, int) else "locked" in str(exc)  # 5: SQLITE_BUSY


def get_meta(conn: sqlite3.Connection, name: str, default: int = 0) -> int:
    """An integer watermark from `meta`."""
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return default if row is None else int(row[0])


def set_meta(conn: sqlite3.Connection, name: str, value: int) -> None:
    """Store an integer watermark in `meta` (inside the caller's write transaction)."""
    conn.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = ?",
        (name, str(value), str(value)),
    )
