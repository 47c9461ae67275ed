"""Usage counters for rolling windows, as running totals: any window is two indexed lookups, however busy.

Each row carries the running count and sum of its scope up to and including itself, so the usage in
`[since, now]` is the last row's totals minus the totals just before the first row at or after `since`. The
table is clustered on (scope, ts, cum_count) (WITHOUT ROWID): a lookup reads one B-tree, and an insert writes
one page.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

__all__ = ["add_usage", "usage_since"]

_LAST = "SELECT cum_count, cum_sum, ts FROM usage WHERE scope = ? ORDER BY ts DESC, cum_count DESC LIMIT 1"
# Both ends of a window in one statement: the scope's last row, and the totals just before the window starts.
_WINDOW = (
    "SELECT l.cum_count, l.cum_sum, l.ts, f.before_count, f.before_sum FROM "
    "(SELECT cum_count, cum_sum, ts FROM usage WHERE scope = ?1 ORDER BY ts DESC, cum_count DESC LIMIT 1) AS l "
    "LEFT JOIN (SELECT cum_count - 1 AS before_count, cum_sum - amount AS before_sum FROM usage "
    "WHERE scope = ?1 AND ts >= ?2 ORDER BY ts, cum_count LIMIT 1) AS f"
)
_INSERT = "INSERT INTO usage (scope, ts, amount, cum_count, cum_sum) VALUES (?, ?, ?, ?, ?)"

Last = tuple[int, float, int]  # a scope's running count, running sum and time


def usage_since(conn: sqlite3.Connection, scope: str, since_ns: int) -> tuple[int, float, Last | None]:
    """Calls and summed amount counted for `scope` from `since_ns` on, and the scope's last row."""
    row = conn.execute(_WINDOW, (scope, since_ns)).fetchone()
    if row is None:
        return 0, 0.0, None
    last: Last = (int(row[0]), float(row[1]), int(row[2]))
    if row[3] is None:  # nothing in the window
        return 0, 0.0, last
    return int(row[0] - row[3]), float(row[1] - row[4]), last


def add_usage(
    conn: sqlite3.Connection, rows: Iterable[tuple[str, int, float]], known: dict[str, Last | None] | None = None
) -> None:
    """Count `(scope, ts, amount)` rows inside the caller's write transaction.

    `known` holds scopes' last rows already read in this transaction (None: the scope has no row yet).
    """
    totals: dict[str, Last | None] = dict(known or {})
    out = []
    for scope, ts, amount in rows:
        if scope not in totals:
            row = conn.execute(_LAST, (scope,)).fetchone()
            totals[scope] = None if row is None else (int(row[0]), float(row[1]), int(row[2]))
        count, total, last_ts = totals[scope] or (0, 0.0, ts)
        ts = max(ts, last_ts)  # keep each scope's rows in time order, even across processes
        totals[scope] = (count + 1, total + amount, ts)
        out.append((scope, ts, amount, count + 1, total + amount))
    conn.executemany(_INSERT, out)
