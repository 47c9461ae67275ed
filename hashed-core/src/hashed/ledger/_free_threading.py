"""What the lock-free appends rely on, the GIL, and what replaces it on a free-threaded CPython.

Durable mode's caller appends a record to its journal with one `mmap.write` and no lock (`_journal.py`), and
background mode's writer copies its queue with one `list()` call: each is a single step only because the GIL lets
no other thread run during a call into C. A free-threaded build (3.13t and later) running without the GIL
(`sys._is_gil_enabled()` returns False) has no such guarantee: two threads could copy their frames to the same
place, or one append into a mapping another thread is closing. So the ledger decides once, when it opens, which
journal class and which queue copy it uses: with the GIL, the lock-free ones (nothing changes, nothing is paid per
call); without it, a journal whose appends take a lock and a copy by index.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from hashed.ledger._journal import Journal

__all__ = ["LockedJournal", "gil_enabled", "journal_type"]


def gil_enabled() -> bool:
    """Whether this interpreter runs with the GIL (always, before Python 3.13; a free-threaded build may not)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def journal_type() -> type[Journal]:
    """The journal class for this interpreter: `Journal` with the GIL, `LockedJournal` without it."""
    return Journal if gil_enabled() else LockedJournal


class LockedJournal(Journal):
    """A journal whose appends and sealing take a lock: for a free-threaded interpreter running without the GIL.

    The lock makes each append one step again, as the GIL does (the frames keep the order of the calls), and keeps
    an append from writing into a mapping that `seal` is closing.
    """

    def __init__(self, path: Path, fd: int, size: int) -> None:
        super().__init__(path, fd, size)
        self._lock = threading.Lock()

    def append(self, frame: bytes) -> bool:
        """Store one frame, under the journal's lock (see `Journal.append`)."""
        with self._lock:
            return super().append(frame)

    def seal(self) -> None:
        """Take no more frames, once no append is under way (see `Journal.seal`)."""
        with self._lock:
            super().seal()
