"""What the shipper sends: the ledger's signed records past the `shipped_through` watermark, and what came back.

The ledger owns its tables; the shipper (hashed.shipping) asks through `Outbox`'s typed queries and writes no SQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from hashed.ledger._db import Database, get_meta, set_meta

__all__ = ["Batch", "Outbox"]

_NEXT = (
    "SELECT r.seq, r.kind, r.body, r.hash, s.sig FROM records r LEFT JOIN signatures s ON s.seq = r.seq "
    "WHERE r.seq > ? ORDER BY r.seq LIMIT ?"
)
Batch = tuple[int, list[dict[str, Any]], bool]  # the watermark, the records to send, whether more rows followed


class Outbox:
    """The shipper's side of one ledger: reads on a connection of its own (opened at first use), writes via `db`.

    Its own connection, so the shipping thread's reads never wait for the process's database lock.
    """

    def __init__(self, db: Database, path: Path) -> None:
        self._db = db
        self._path = path
        self._read: sqlite3.Connection | None = None

    def _reader(self) -> sqlite3.Connection:
        if self._read is None:
            self._read = sqlite3.connect(self._path, check_same_thread=False)
        return self._read

    def unshipped(self) -> int:
        """Committed records the backend has not acknowledged."""
        conn = self._reader()
        high = conn.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
        return max(0, high - get_meta(conn, "shipped_through"))

    def next_batch(self, limit: int) -> Batch:
        """The watermark, the next signed records to send in order, and whether more rows follow.

        The batch stops before the first unsigned record (it goes in a later round) and after a key rotation (so
        the batch after it is signed with the new key).
        """
        conn = self._reader()
        mark = get_meta(conn, "shipped_through")
        rows = conn.execute(_NEXT, (mark, limit)).fetchall()
        records: list[dict[str, Any]] = []
        for _seq, kind, body, digest, sig in rows:
            if sig is None:
                break
            record = orjson.loads(body)
            record["hash"], record["sig"] = bytes(digest).hex(), bytes(sig).hex()
            records.append(record)
            if kind == "key_rotation":
                break
        return mark, records, len(rows) == limit or len(records) < len(rows)

    def acknowledge(self, through: int, refusals: list[tuple[int, str, str]], at_ns: int) -> None:
        """The backend took every record up to `through` and refused these `(seq, code, reason)` (kept locally)."""
        with self._db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO refusals (seq, code, reason, at_ns) VALUES (?, ?, ?, ?)",
                [(seq, code, reason, at_ns) for seq, code, reason in refusals],
            )
            set_meta(conn, "shipped_through", through)

    def checkpoint_to_send(self) -> tuple[int, str] | None:
        """The latest checkpoint the agent signed, once every record it covers is shipped and if not sent yet.

        Only the latest: it extends every earlier one, so the backend checks them all by checking it.
        """
        conn = self._reader()
        row = conn.execute("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        if row is None or row[0] > get_meta(conn, "shipped_through") or row[0] <= get_meta(conn, "checkpoint_sent"):
            return None
        return int(row[0]), str(row[1])

    def checkpoint_sent(self, size: int) -> None:
        """The backend answered for the checkpoint of `size` (cosigned, or refused for good): not sent again."""
        with self._db.write() as conn:
            set_meta(conn, "checkpoint_sent", size)

    def close(self) -> None:
        """Close the read connection (the database itself is the ledger's)."""
        if self._read is not None:
            self._read.close()
