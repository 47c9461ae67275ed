"""The witness's own SQLite file: trusted logs, the latest checkpoint cosigned per log, and evidence kept.

Checking the old size and storing the new checkpoint happen in one `BEGIN IMMEDIATE` transaction, so two
requests racing for one log cannot roll it back (the race tlog-witness describes).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hashed.protocol import Checkpoint, NoteVerifier, parse_verifier_key

__all__ = ["Evidence", "WitnessStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (origin TEXT NOT NULL, vkey TEXT NOT NULL, PRIMARY KEY (origin, vkey));
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL, at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY, origin TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
    held TEXT NOT NULL, offered TEXT NOT NULL, proof TEXT NOT NULL, at INTEGER NOT NULL
);
"""

Evidence = tuple[str, str, str, str, str, str, int]
"""(origin, kind, detail, held note, offered note, proof lines, unix time)."""


class WitnessStore:
    """One witness database; safe to share between the server's threads.

    Example:
        >>> store = WitnessStore(":memory:")
        >>> store.latest("example.com/log") is None
        True
    """

    def __init__(self, path: Path | str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def add_log(self, vkey: str, origin: str | None = None) -> str:
        """Trust a log's key (its origin defaults to the key name, as tlog-checkpoint recommends)."""
        verifier = parse_verifier_key(vkey)
        origin = origin or verifier.name
        with self._lock:
            self._conn.execute("INSERT OR IGNORE INTO logs VALUES (?, ?)", (origin, verifier.vkey))
        return origin

    def logs(self) -> dict[str, list[NoteVerifier]]:
        """Trusted keys by origin."""
        with self._lock:
            rows = self._conn.execute("SELECT origin, vkey FROM logs ORDER BY origin").fetchall()
        found: dict[str, list[NoteVerifier]] = {}
        for origin, vkey in rows:
            found.setdefault(origin, []).append(parse_verifier_key(vkey))
        return found

    def latest(self, origin: str) -> tuple[Checkpoint, str] | None:
        """The latest checkpoint cosigned for `origin`, and its note with this witness's cosignature."""
        with self._lock:
            return self._latest(origin)

    def _latest(self, origin: str) -> tuple[Checkpoint, str] | None:
        row = self._conn.execute("SELECT size, root, note FROM latest WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else (Checkpoint(origin, row[0], row[1]), row[2])

    def atomically(self, origin: str, decide: Callable[[tuple[Checkpoint, str] | None], T]) -> T:
        """Run `decide(latest(origin))` in one write transaction (it may call `store_latest`, `keep_evidence`)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = decide(self._latest(origin))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

    def store_latest(self, checkpoint: Checkpoint, note: str) -> None:
        """Record the newest checkpoint cosigned (call inside `atomically`)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO latest VALUES (?, ?, ?, ?, ?)",
            (checkpoint.origin, checkpoint.size, checkpoint.root, note, int(time.time())),
        )

    def keep_evidence(self, origin: str, kind: str, detail: str, held: str, offered: str, proof: str) -> None:
        """Keep a signed checkpoint that contradicts what the witness holds (call inside `atomically`)."""
        self._conn.execute(
            "INSERT INTO evidence (origin, kind, detail, held, offered, proof, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (origin, kind, detail, held, offered, proof, int(time.time())),
        )

    def evidence(self) -> list[Evidence]:
        """Everything kept as evidence of log misbehaviour, oldest first."""
        with self._lock:
            return self._conn.execute(
                "SELECT origin, kind, detail, held, offered, proof, at FROM evidence ORDER BY id"
            ).fetchall()
