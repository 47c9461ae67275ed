"""Read-only questions about a ledger file that the CLI asks without opening the agent's `Ledger`.

The ledger owns its tables: everything outside `hashed.ledger` reads them through these functions (a read-only
connection, so a running agent is never blocked and the file is never created or changed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson

from hashed.ledger._db import get_meta

__all__ = ["LedgerSummary", "Refusal", "expected_key", "ledger_summary", "refusals"]

Refusal = tuple[int, str, str, int]  # seq, code, reason, at_ns


@dataclasses.dataclass(frozen=True)
class LedgerSummary:
    """Where a ledger stands: its head, and what is not signed, shipped or answered yet."""

    head_seq: int | None
    head_hash: str | None
    unsigned: int
    unshipped: int
    pending_approvals: int


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        yield conn


def ledger_summary(path: Path) -> LedgerSummary:
    """Head, unsigned and unshipped records, pending approvals.

    Raises:
        sqlite3.Error: not a ledger, or a damaged one.
    """
    with _reading(path) as conn:
        head = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        unsigned = conn.execute(
            "SELECT count(*) FROM records r LEFT JOIN signatures s ON s.seq = r.seq WHERE r.seq > ? AND s.seq IS NULL",
            (get_meta(conn, "signed_through"),),
        ).fetchone()[0]
        shipped = get_meta(conn, "shipped_through")
        pending = conn.execute("SELECT count(*) FROM approvals WHERE status = 'pending'").fetchone()[0]
    if head is None:
        return LedgerSummary(None, None, int(unsigned), 0, int(pending))
    return LedgerSummary(int(head[0]), bytes(head[1]).hex(), int(unsigned), int(head[0]) - shipped, int(pending))


def refusals(path: Path) -> list[Refusal]:
    """The records the backend refused, and why, in seq order.

    Raises:
        sqlite3.Error: not a ledger, or a damaged one.
    """
    with _reading(path) as conn:
        rows = conn.execute("SELECT seq, code, reason, at_ns FROM refusals ORDER BY seq").fetchall()
    return [(int(seq), str(code), str(reason), int(at)) for seq, code, reason, at in rows]


def expected_key(path: Path) -> str | None:
    """The public key the ledger expects to sign its next record (a rotation's new key, if it is the head).

    None for a ledger that does not exist yet or holds no record.
    """
    if not path.exists():
        return None
    with _reading(path) as conn:
        row = conn.execute("SELECT key, kind, body FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    key, kind, body = row
    return str(orjson.loads(body)["new_key"]) if kind == "key_rotation" else str(key)
