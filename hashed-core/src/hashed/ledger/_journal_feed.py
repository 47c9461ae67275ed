"""The writer's journal feed (durable mode): reading the frames callers append, and deleting committed journals.

Each process appends its records to its own memory-mapped journal (`_journal.py`); the writer thread reads the
new frames at each look, in the order they were appended, and deletes a full journal once it is committed to its
end.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from hashed.errors import LedgerWriteError
from hashed.ledger._db import Database
from hashed.ledger._journal import FIRST, Journal
from hashed.ledger._kick import Kick
from hashed.ledger._mac import Macs
from hashed.ledger._queued import ForgedFrameError, Queued, Recipes, from_frame, log_text
from hashed.ledger._replays import committed_nonces

__all__ = ["MAX_QUEUE", "JournalFeed"]

_log = logging.getLogger("hashed.ledger")
MAX_QUEUE = 4096  # queued records before callers wait: bounds memory, and the garbage collector's work


class JournalFeed:
    """The journal part of `BackgroundWriter`."""

    _queue: collections.deque[Queued]
    _sources: list[Journal]  # the journals whose frames are still to be read, in order
    _through: dict[Journal, int]  # how far each journal is committed
    _pull_lock: threading.Lock
    _mac: Callable[[], Macs]
    _db: Database
    _recipes: Recipes
    _kick: Kick
    broken: LedgerWriteError | None

    def follow(self, journal: Journal) -> None:
        """Journal mode: read records from `journal`'s frames, after those of every journal followed before it."""
        with self._pull_lock:
            self._sources.append(journal)

    def _pull(self, limit: int = MAX_QUEUE) -> None:
        """Journal mode: queue the frames callers appended since the last look, in the order they were appended.

        Stops once `limit` records are queued (the rest stay in the journal: memory stays bounded). A journal that
        was not sealed before its frames were read may still grow: the journals after it wait for the next look,
        so that a thread's records never overtake each other across the switch to a new file.
        """
        if not self._sources:
            return
        with self._pull_lock:
            queue = self._queue
            done = 0
            for journal in self._sources:
                sealed = journal.retired  # read first: a journal sealed now has all its frames
                mac = self._mac()
                # Only up to where this process appended: past it, whoever wrote to the file, it was not us
                for end, payload in journal.frames(journal.pulled, journal.end):
                    try:
                        item = from_frame(payload, mac, (journal, end))
                    except ForgedFrameError as exc:
                        exc.log(str(journal.path))
                    else:
                        if not (
                            sealed and journal.pulled >= journal.sealed_at and self._copied(journal, item, payload)
                        ):
                            queue.append(item)
                    journal.pulled = end
                    if len(queue) >= limit:
                        break
                if not sealed or journal.pulled < journal.end:
                    break
                done += 1
            if done:
                del self._sources[:done]

    def _copied(self, journal: Journal, item: Queued, frame: bytes) -> bool:
        """Whether a frame found past where `journal` ended when it was sealed is a copy of one of ours (logged).

        Sealing reads the frames other threads appended while it closed the file; a copy of one of the agent's own
        frames written there (its MAC holds) would be read too. Its original is in a journal this process still
        holds (deleted only once committed), or committed (`_replays.py`). Rare: only then is the ledger read.
        """
        held = any(other.holds(frame, journal.pulled if other is journal else other.end) for other in self.journals)
        if not held:
            uri = f"{self._db.path.resolve().as_uri()}?mode=ro"
            try:
                with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:  # not the locked one: no lock order
                    held = item.nonce in committed_nonces(conn, (item.ts,))
            except sqlite3.Error as exc:  # committing it goes through the writer's own error handling
                _log.warning(
                    "hashed: could not look for %s's original in the ledger (%s); committing it", item.nonce, exc
                )
        if held:
            text = log_text(item, self._recipes)
            _log.error(
                "hashed: %s holds a copy of a record already committed; not committed again: %s", journal.path, text
            )
        return held

    def keep_up(self, timeout: float) -> None:
        """Journal mode: a caller that starts a new journal waits (up to `timeout`) for a writer two journals behind.

        So a flood of calls cannot fill the disk with journals faster than the ledger takes them.
        """
        deadline = time.monotonic() + timeout
        while len(self._sources) > 2 and self.broken is None and time.monotonic() < deadline:
            self._kick.set()
            time.sleep(0.005)

    @property
    def unread(self) -> bool:
        """Journal mode: whether callers appended frames the writer has not read yet."""
        return any(journal.pulled < journal.end for journal in list(self._sources))  # a look may shorten it

    def committed(self, marks: dict[Journal, int]) -> None:
        """Journal mode: note how far each journal is committed; delete the full ones committed to their end."""
        through = self._through
        with self._pull_lock:  # never while a look reads it
            through.update(marks)
            for journal in [j for j, end in through.items() if j.retired and end >= j.end]:
                del through[journal]
                journal.discard()
        for journal in list(through):
            if not journal.retired:
                journal.prepare_ahead()  # the caller's next appends find their pages ready

    @property
    def journals(self) -> list[Journal]:
        """The journals this writer is committing from (the live one and retired ones not deleted yet)."""
        return list(dict.fromkeys([*self._sources, *self._through]))

    def committed_through(self, journal: Journal) -> int:
        """How far `journal` is committed to the ledger (`FIRST`: nothing yet)."""
        return self._through.get(journal, FIRST)
