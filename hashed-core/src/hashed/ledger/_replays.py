"""Copies of the agent's own journal frames: recognised by a nonce the ledger already holds (#14).

A copied frame's MAC holds (the agent wrote the original), so the MAC cannot tell it apart. Committed again, one
call would be signed as two, and a backend, which refuses a nonce used before, would refuse the copy and, the chain
broken there, every record after it. A copy carries its original's time and nonce: the records of exactly that
time hold the nonce if the original is committed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

import orjson

__all__ = ["committed_nonces"]

_TIMES_BETWEEN = "SELECT seq, ts FROM records WHERE ts BETWEEN ? AND ?"
_BODY = "SELECT body FROM records WHERE seq = ?"


def committed_nonces(conn: sqlite3.Connection, times: Collection[int]) -> set[str]:
    """The nonces of the committed records whose time is one of `times`.

    One pass over the times of the span (there is no index on them: this runs only after a crash, or when a full
    journal is sealed with frames past its end), then the few bodies that match.
    """
    if not times:
        return set()
    low, high = min(times), max(times)
    same = [seq for seq, ts in conn.execute(_TIMES_BETWEEN, (low, high)) if ts in times]
    bodies = [conn.execute(_BODY, (seq,)).fetchone()[0] for seq in same]
    return {str(orjson.loads(body).get("nonce")) for body in bodies}
