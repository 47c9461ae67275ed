"""Outcome records that could not be written when their call returned (issue #14, item 7).

The tool has run by then: raising would hand the caller an error for a side effect that happened, and invite it
to run the tool again. So the caller gets its result, and the record is logged in full and counted. With
`ledger_on_error = "closed"` it is also kept, and written before the next guarded call of this `Hashed`, which
is refused (`LedgerWriteError`, before its tool runs) until it can be: nothing runs unrecorded after a failure.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from hashed._decisions import log_unrecorded
from hashed._entries import WrittenOutcome
from hashed.errors import LedgerWriteError

if TYPE_CHECKING:
    from hashed.ledger import Ledger
    from hashed.types import Decision

__all__ = ["Unrecorded"]


class Unrecorded:
    """The outcomes waiting to be written, and how many could not be written when their call returned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.waiting: list[tuple[str, dict[str, Any]]] = []
        self.count = 0

    def add(self, decision: Decision, fields: dict[str, Any], exc: LedgerWriteError, *, keep: bool) -> None:
        """Log the outcome record in full and count it; `keep` it to be written before the next call (closed)."""
        then = "written before the next guarded call, refused until it can be" if keep else "ledger_on_error=open"
        why = f"the outcome of {decision.tool} (the call ran, its result is returned) was not recorded ({exc}); {then}"
        log_unrecorded("outcome", decision.agent, fields, why)
        with self._lock:
            self.count += 1
            if keep:
                self.waiting.append((decision.agent, fields))

    def try_write(self, ledger: Ledger) -> bool:
        """Write the waiting outcomes if the ledger takes them now (flush, close); whether none is left waiting."""
        if self.waiting:
            with contextlib.suppress(LedgerWriteError):  # each was logged in full when its call returned
                self.write(ledger)
        return not self.waiting

    def write(self, ledger: Ledger) -> None:
        """Write the waiting outcomes now.

        Raises:
            LedgerWriteError: they still cannot be written (they stay waiting): the next call must not run.
        """
        with self._lock:
            waiting, self.waiting = self.waiting, []
        done = 0
        try:
            for agent, fields in waiting:
                ledger.record_outcome(WrittenOutcome(agent, fields))
                done += 1
        except LedgerWriteError as exc:
            with self._lock:
                self.waiting[:0] = waiting[done:]
            raise LedgerWriteError(
                f"{len(waiting) - done} outcome record(s) of calls that already ran cannot be written yet ({exc}); "
                "guarded calls are refused until they are (ledger_on_error=closed)"
            ) from exc
