"""Group commit for `ledger_sync = "full"`: callers that commit at the same time share one fsync.

With synchronous=FULL every SQLite commit waits for the disk. Callers of one process that arrive while a commit
is under way queue their record; when it ends, the first of them commits every record queued meanwhile in one
transaction, one fsync, and wakes the others once their records are on disk. A lone caller commits its own record
at once, as before: nothing waits for a group to fill.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hashed.errors import LedgerWriteError
from hashed.ledger._queued import Queued

__all__ = ["CommitGroups"]


class _Waiter:
    __slots__ = ("done", "error", "item", "lead")

    def __init__(self, item: Queued) -> None:
        self.item = item
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.lead = False  # woken to commit the next group itself


class CommitGroups:
    """The callers waiting to commit, and whether one of them is committing now."""

    def __init__(self, commit: Callable[[list[Queued]], Callable[[], None]]) -> None:
        # Commits a group in one transaction (the caller's thread) and returns what to do once every caller of the
        # group is released (tell the writer and the observer): a sink's error then reaches the caller whose thread
        # runs it, never the others as a failed commit.
        self._commit = commit
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._busy = False  # a caller is committing a group

    @property
    def waiting(self) -> int:
        """Callers queued behind the commit under way."""
        return len(self._waiting)

    def commit(self, item: Queued) -> None:
        """Commit `item` before returning: alone, or in the group of whoever commits next.

        Raises:
            LedgerWriteError: the group could not be committed (every caller in it gets the error).
        """
        waiter = _Waiter(item)
        with self._lock:
            self._waiting.append(waiter)
            lead = not self._busy
            self._busy = True
        if not lead:
            waiter.done.wait()
            if not waiter.lead:
                if waiter.error is not None:
                    raise LedgerWriteError(str(waiter.error)) from waiter.error
                return
        with self._lock:
            group, self._waiting = self._waiting, []
        error: BaseException | None = None
        after: Callable[[], None] | None = None
        try:
            after = self._commit([member.item for member in group])
        except BaseException as exc:  # noqa: BLE001 - every caller of the group gets it; raised below
            error = exc
        with self._lock:
            if self._waiting:  # they came while this group committed: the first commits theirs
                following = self._waiting[0]
                following.lead = True
                following.done.set()
            else:
                self._busy = False
        for member in group:
            if member is not waiter:
                member.error = error
                member.done.set()
        if error is not None:
            raise error
        if after is not None:
            after()
