"""Usage counters for rolling windows, as running totals: any window is two indexed lookups, however busy.

Each row carries the running count and sum of its scope up to and including itself, so the usage in
`[since, now]` is the last row's totals minus the totals just before the first row at or after `since`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

__all__ = ["add_usage", "usage_since"]

_LAST = "SELECT cum_count, cum_sum, ts FROM usage WHERE scope = ? ORDER BY ts DESC, rowid DESC LIMIT 1"
_FIRST_IN_WINDOW = (
    "SELECT cum_count - 1, cum_sum - amount FROM usage WHERE scope = ? AND ts >= ? ORDER BY ts, rowid LIMIT 1"
)
_INSERT = "INSERT INTO usage (scope, ts, amount, cum_count, cum_sum) VALUES (?, ?, ?, ?, ?)"


def usage_since(conn: sqlite3.Connection, scope: str, since_ns: int) -> tuple[int, float]:
    """Calls and summed amount counted for `scope` from `since_ns` on."""
    last = conn.execute(_LAST, (scope,)).fetchone()
    if last is None or last[2] < since_ns:
        return 0, 0.0
    before = conn.execute(_FIRST_IN_WINDOW, (scope, since_ns)).fetchone()
    return int(last[0] - before[0]), float(last[1] - before[1])


def add_usage(conn: sqlite3.Connection, rows: Iterable[tuple[str, int, float]]) -> None:
    """Count `(scope, ts, amount)` rows, inside the caller's write transaction."""
    totals: dict[str, tuple[int, float, int]] = {}
    out = []
    for scope, ts, amount in rows:
        if scope not in totals:
            last = conn.execute(_LAST, (scope,)).fetchone()
            totals[scope] = (0, 0.0, ts) if last is None else (int(last[0]), float(last[1]), int(last[2]))
        count, total, last_ts = totals[scope]
        ts = max(ts, last_ts)  # keep each scope's rows in time order, even across processes
        totals[scope] = (count + 1, total + amount, ts)
        out.append((scope, ts, amount, count + 1, total + amount))
    conn.executemany(_INSERT, out)
