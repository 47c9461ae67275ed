"""Reading a ledger file without opening it for writing: its records, size, and the journals beside it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from hashed.errors import LedgerError
from hashed.ledger._journal import frames, journal_files

__all__ = ["count_records", "is_ledger_file", "journal_backlog", "read_ledger"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_ledger_file(path: Path) -> bool:
    """Whether `path` is a ledger database (rather than a JSONL export)."""
    with path.open("rb") as handle:
        return handle.read(16) == _SQLITE_MAGIC


def _connect_readonly(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open the ledger at {path}: {exc}") from exc


def count_records(path: Path) -> int:
    """How many records a ledger file or export holds (for progress bars)."""
    if not is_ledger_file(path):
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    with contextlib.closing(_connect_readonly(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])


def journal_backlog(path: Path) -> tuple[int, list[Path]]:
    """Records the journals beside a ledger hold that it does not yet, and files there this version cannot read.

    Read-only. A running agent's journal holds what its writer has not committed for a few milliseconds; a killed
    process's holds what the next start of the agent commits.
    """
    files = journal_files(path)
    if not files:
        return 0, []
    with contextlib.closing(_connect_readonly(path)) as conn:
        marks = dict(conn.execute("SELECT name, value FROM meta WHERE name LIKE 'journal:%'").fetchall())
    waiting, unreadable = 0, []
    for file in files:
        try:
            image = file.read_bytes()
        except OSError:  # committed and deleted meanwhile
            continue
        try:
            waiting += sum(1 for _ in frames(image, int(marks.get(f"journal:{file.stem}", 0)), len(image)))
        except ValueError:
            unreadable.append(file)
    return waiting, unreadable


def read_ledger(path: Path, start: int = 1) -> Iterator[dict[str, Any]]:
    """The records of a ledger database in export form, read-only, in sequence order (no key needed)."""
    with contextlib.closing(_connect_readonly(path)) as conn:
        seq = start - 1
        while True:
            rows = conn.execute(
                "SELECT r.seq, r.body, r.hash, s.sig FROM records r LEFT JOIN signatures s ON s.seq = r.seq "
                "WHERE r.seq > ? ORDER BY r.seq LIMIT 2000",
                (seq,),
            ).fetchall()
            if not rows:
                return
            seq = rows[-1][0]
            for _, body, digest, sig in rows:
                record = orjson.loads(body)
                record["hash"] = bytes(digest).hex()
                record["sig"] = None if sig is None else bytes(sig).hex()
                yield record
