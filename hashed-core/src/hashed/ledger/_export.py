"""Reading a ledger file without opening it for writing: its records, size, and the journals beside it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from hashed.errors import ChainBrokenError, LedgerError
from hashed.ledger._journal import frames, journal_files

__all__ = ["count_records", "is_ledger_file", "journal_backlog", "read_ledger"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_ledger_file(path: Path) -> bool:
    """Whether `path` is a ledger database (rather than a JSONL export)."""
    with path.open("rb") as handle:
        return handle.read(16) == _SQLITE_MAGIC


def _connect_readonly(path: Path) -> sqlite3.Connection:
    try:
        # check_same_thread=False: a reader left unfinished (verify stops at the first bad record, and the report
        # keeps the exception, whose traceback keeps the generator) is closed by the garbage collector, which may
        # run in any thread; read-only and used by one consumer at a time, the connection is safe to close there.
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open the ledger at {path}: {exc}") from exc


def count_records(path: Path) -> int:
    """How many records a ledger file or export holds (for progress bars)."""
    if not is_ledger_file(path):
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    with contextlib.closing(_connect_readonly(path)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):  # a damaged page: reading record by record names the first bad one
                return 0
            raise


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
    """The records of a ledger database in export form, read-only, in sequence order (no key needed).

    Raises:
        ChainBrokenError: naming the first record that cannot be read (a damaged file), whose body is not a JSON
            object, or whose `seq`, `key`, `kind` or `ts` column disagrees with its signed body: the agent reads
            those columns, so a ledger where they were altered must not verify (issue #14, item 9).
    """
    with contextlib.closing(_connect_readonly(path)) as conn:
        seq = start - 1
        while rows := _fetch(conn, seq):
            for row in rows:
                if row[0] != seq + 1:  # a gap: a deleted record (the verifier names it), or a damaged page
                    _raise_if_damaged(conn, seq)
                seq = row[0]
                yield _as_record(row)


_ROWS = (
    "SELECT r.seq, r.key, r.kind, r.ts, r.body, r.hash, s.sig FROM records r "
    "LEFT JOIN signatures s ON s.seq = r.seq WHERE r.seq > ? ORDER BY r.seq LIMIT ?"
)


def _fetch(conn: sqlite3.Connection, after: int) -> list[tuple[Any, ...]]:
    """The next rows after seq `after`; in a damaged file, those before the damage, then an error naming it."""
    try:
        return conn.execute(_ROWS, (after, 2000)).fetchall()
    except sqlite3.DatabaseError as exc:
        error = exc
    rows: list[tuple[Any, ...]] = []
    try:  # one row at a time, up to the first one that cannot be read (a damaged page can also hide rows: a gap)
        while len(rows) < 2000:
            row = conn.execute(_ROWS, (rows[-1][0] if rows else after, 1)).fetchone()
            if row is None or row[0] != (rows[-1][0] if rows else after) + 1:
                break
            rows.append(row)
    except sqlite3.DatabaseError as exc:
        error = exc
    if rows:
        return rows
    if not _is_damage(error):  # not a ledger at all (no records table, not a database): no record to name
        raise error
    raise _damaged(after, str(error))


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    return code & 0xFF == 11 if isinstance(code, int) else "malformed" in str(exc)  # 11: SQLITE_CORRUPT


def _damaged(after: int, why: str) -> ChainBrokenError:
    return ChainBrokenError(
        after + 1,
        f"the ledger file cannot be read after record {after} ({why}): it is damaged; "
        "restore it from a backup, or compare with the backend's copy (hashed logs export --agent AGENT)",
    )


def _raise_if_damaged(conn: sqlite3.Connection, after: int) -> None:
    try:
        problems = [" ".join(str(row[0]).split()) for row in conn.execute("PRAGMA quick_check(1)").fetchall()]
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems != ["ok"]:
        raise _damaged(after, "; ".join(problems))


def _as_record(row: tuple[Any, ...]) -> dict[str, Any]:
    seq, key, kind, ts, body, digest, sig = row
    try:
        record = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ChainBrokenError(seq, f"its body is not JSON ({exc}): the ledger file was altered") from None
    if not isinstance(record, dict):
        raise ChainBrokenError(seq, "its body is not a JSON object: the ledger file was altered")
    columns = {"seq": seq, "key": key, "kind": kind, "ts": str(ts)}
    disagree = [name for name, value in columns.items() if record.get(name) != value]
    if disagree:
        raise ChainBrokenError(
            seq,
            f"its {', '.join(disagree)} {'columns disagree' if len(disagree) > 1 else 'column disagrees'} "
            "with the signed record: the ledger file was altered outside Hashed (the agent reads these columns)",
        )
    record["hash"] = bytes(digest).hex()
    record["sig"] = None if sig is None else bytes(sig).hex()
    return record
