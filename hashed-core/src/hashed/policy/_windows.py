"""Rolling-window limits, counted from the ledger database.

Counting in the database makes limits survive restarts and holds them across every process of the agent.
The check and the count happen in the transaction that records the decision.
"""

from __future__ import annotations

from collections.abc import Sequence

from hashed.ledger._txn import Txn
from hashed.policy._engine import WindowCheck

__all__ = ["consume_windows", "exceeded_window"]


def exceeded_window(windows: Sequence[WindowCheck], txn: Txn, now_ns: int) -> tuple[WindowCheck, str] | None:
    """The first window this call would overflow, with the reason; None when all have room."""
    for window in windows:
        count, total = txn.usage(window.scope, now_ns - window.per_ns)
        if window.max_calls is not None and count + 1 > window.max_calls:
            return window, f"rate limit reached: {window.label}, {count} already made"
        if window.max_sum is not None and total + window.amount > window.max_sum:
            return window, (f"window limit reached: {window.label}; {total:g} used, this call adds {window.amount:g}")
    return None


def consume_windows(windows: Sequence[WindowCheck], txn: Txn) -> None:
    """Count an allowed call once in each usage scope of its windows (committed with its decision record)."""
    counted: set[str] = set()
    for window in windows:
        if window.scope not in counted:
            counted.add(window.scope)
            txn.add_usage(window.scope, window.amount)
