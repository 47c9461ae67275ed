"""The ledger's writer thread, in every mode: it commits what callers queue or journal, and signs every record.

Callers queue (background mode) or journal (durable mode) records; this thread places, hashes, signs and commits
them in groups. A step a caller commits itself (immediate mode; a window count or an approval) places its records
the same way (`_group_commit.stage`, under the same `taken` lock, after everything queued before it) and hands
them to this thread to sign (`sign_later`): one placer, one signer.

A group's signatures (made by the helper process while the group is prepared) are stored with the next group,
so callers never wait for the last signature of a group; a crash between the two leaves records unsigned,
which the ledger signs when it next opens (each carries a MAC until then, `_mac.py`, so only the agent's own).

A crash loses what is still queued (at most the last tens of milliseconds). A record that cannot be written is never
dropped silently: with `on_write_error="open"` it goes to the error log; with "closed" it stays queued, and
callers are refused until the disk recovers.

The thread's loop and the callers' side are here; committing a group is `_group_commit.py`, reading the
journals of durable mode `_journal_feed.py`, and what a queued record is `_queued.py`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

from hashed.errors import LedgerWriteError
from hashed.identity import Identity
from hashed.ledger._db import Database
from hashed.ledger._free_threading import gil_enabled
from hashed.ledger._group_commit import BodyMaker, GroupCommit, Placer
from hashed.ledger._journal import Journal
from hashed.ledger._journal_feed import MAX_QUEUE
from hashed.ledger._kick import Kick
from hashed.ledger._mac import Macs
from hashed.ledger._queued import Queued, Recipes, log_lost
from hashed.ledger._sign_service import SigningPipeline, sign_many
from hashed.ledger._signer import seal_unsigned
from hashed.types import LedgerRecord

__all__ = ["JOURNAL_POLL", "Writer"]

_log = logging.getLogger("hashed.ledger")
_BATCH = 4096
_SHARED_BATCH = 32  # group size while callers also commit to SQLite themselves: they wait for less at a time
_SHARED_FOR = 1.0  # seconds a caller's own commit keeps groups small
# While calls keep coming, the writer looks at the queue every _POLL seconds instead of being woken by each
# record: a wake-up makes the writer compete for the GIL at the caller's next hand-off, which in an agent loop
# (thread pools, event loops) cost more than the record itself. After _WARM seconds without records it sleeps
# until the next record wakes it.
_POLL = 0.02  # background mode: also how much a crash may lose
# Durable (journal) mode loses nothing by waiting longer, and each look costs the caller: the writer's group commit
# competes for the GIL with it. In a LangChain agent loop Hashed's share of a tool call was 44–51 µs with looks
# every 100 ms against 53–76 µs every 20 ms (three alternating runs each). Other processes see records that much
# later; this process reads its own at once (reads wait for the writer), and a window's counts never wait.
JOURNAL_POLL = 0.1
_WARM = 1.0
_ASLEEP = 1.0  # seconds an idle writer sleeps before it looks anyway (a record, a flush or close wakes it sooner)
_SWEEP = 2.0  # seconds between looks for records a crashed process left unsigned


class Writer(GroupCommit):
    """One thread committing queued records in groups, and signing every record."""

    def __init__(
        self,
        db: Database,
        *,
        head: Placer,
        body: BodyMaker,
        pipeline: Callable[[], SigningPipeline],
        key: Callable[[], str],
        mac: Callable[[], Macs],
        identity: Callable[[], Identity],
        on_error: str,
        observer: Callable[[], Callable[[LedgerRecord], None] | None],
        recipes: Recipes,
        name: str,
        poll: float | None = None,
    ) -> None:
        self._db = db
        self._poll = _POLL if poll is None else poll  # seconds between looks while calls keep coming
        self._recipes = recipes
        self._head, self._body, self._pipeline, self._key, self._mac = head, body, pipeline, key, mac
        self._identity = identity
        # (seq, hash, the identity whose key the record names) of records callers committed: a rotation may come
        # before their signature, and each is signed by the key it names
        self._to_sign: collections.deque[tuple[int, bytes, Identity]] = collections.deque()
        self._last_sweep = time.monotonic()
        self._on_error = on_error
        self._observer = observer
        self._queue: collections.deque[Queued] = collections.deque()
        self._queued_usage: dict[str, collections.deque[tuple[int, float]]] = {}
        self._usage_lock = threading.Lock()
        self._kick = Kick()  # (not a threading.Event: see `_kick.py`)
        self._drained = threading.Event()
        self._cycle = threading.Lock()  # held from taking a group to committing it (see `taken`)
        self._holding = False  # whether this writer's thread holds `_cycle`
        self._idle = True
        self._closed = False
        self._busy = 0
        self.broken: LedgerWriteError | None = None
        self._ready: collections.deque[tuple[int, bytes]] = collections.deque()  # signatures to store (`take_ready`)
        self._urgent = False  # a flush or close waits: store signatures now, not once callers go quiet
        self._through: dict[Journal, int] = {}  # journal mode: how far each journal is committed
        self._sources: list[Journal] = []  # journal mode: the journals whose frames are still to be read, in order
        self._pull_lock = threading.Lock()
        self._last_batch = 0.0
        self._expected: tuple[int, str] | None = None  # the chain head after this writer's last commit
        self._first = _first if gil_enabled() else _first_by_index  # see `_free_threading.py`
        self.caller_committed = 0.0  # when a caller last committed to SQLite itself (monotonic seconds)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Queued) -> None:
        """Queue one record (the caller's whole cost in background mode).

        Once the thread has died (`broken`, callers let through by `on_write_error="open"`), nothing would ever take
        the record: it goes to the error log now rather than into a queue that grows until the process ends.
        """
        if self.broken is not None and not self._thread.is_alive():
            log_lost(item, "the ledger's writer thread has stopped", self._recipes)
            return
        if item.usage:
            with self._usage_lock:
                for scope, amount in item.usage:
                    self._queued_usage.setdefault(scope, collections.deque()).append((item.ts, amount))
        self._queue.append(item)
        if self._idle:
            self._kick.set()
        if len(self._queue) > MAX_QUEUE and self.broken is None and not self._closed:
            self._drained.clear()  # back-pressure: a caller far ahead of the writer waits for it
            self._kick.set()
            self._drained.wait(1.0)

    def sign_later(self, records: list[tuple[int, bytes, Identity]]) -> None:
        """Records `(seq, hash, identity)` a caller just committed unsigned: this thread signs and stores them."""
        self._to_sign.extend(records)
        self._last_batch = time.monotonic()  # keeps looking every poll while callers commit
        if self._idle:
            self._kick.set()

    def queued_usage(self, scope: str, since_ns: int) -> tuple[int, float]:
        """Usage of `scope` queued but not committed yet."""
        with self._usage_lock:
            entries = list(self._queued_usage.get(scope, ()))
        counted = [amount for ts, amount in entries if ts >= since_ns]
        return len(counted), float(sum(counted))

    @contextlib.contextmanager
    def taken(self) -> Iterator[list[Queued]]:
        """Journal mode: hold the writer still and hand over everything queued, for the caller to commit first.

        A step that commits to SQLite itself (windows, approvals) places these records before its own, so the
        chain keeps the order of the calls. If the caller's transaction fails, they go back to the queue.
        """
        with self._cycle:
            self._pull(limit=1 << 62)  # all of them: the caller's records go after everything before them
            queue = self._queue
            # Taken one by one: a copy then clear() would drop what another thread appends in between.
            items = [queue.popleft() for _ in range(len(queue))]
            try:
                yield items
            except BaseException:
                queue.extendleft(reversed(items))
                raise
            self._forget_usage(items)  # committed by the caller: SQLite counts them now
            self._drained.set()

    def _forget_usage(self, items: list[Queued]) -> None:
        """Stop counting these records' window usage as queued (they are committed)."""
        if any(item.usage for item in items):
            with self._usage_lock:
                for item in items:
                    for scope, _ in item.usage:
                        self._queued_usage[scope].popleft()

    @property
    def busy(self) -> bool:
        """Whether records are waiting to be committed."""
        return bool(self._queue or self._busy or self._ready or self._to_sign or self.unread)

    @property
    def queued(self) -> int:
        """How many records wait to be committed (a group being committed counts until it is)."""
        self._pull()
        return len(self._queue)

    @property
    def on_writer_thread(self) -> bool:
        """Whether the caller is the writer itself (a sink told about a record), which must not wait for itself."""
        return threading.current_thread() is self._thread

    def nudge(self) -> None:
        """A record was journaled: wake the writer if it sleeps (it looks by itself while calls keep coming)."""
        if self._idle:
            self._kick.set()

    def hurry(self) -> None:
        """Write and store signatures now (flush, close)."""
        self._urgent = True
        self._kick.set()

    def _loop(self) -> None:
        """The thread: `_steps` until closed. If it fails unexpectedly (a bug), say so and refuse what needs it.

        Otherwise a dead writer would be silent: callers journal on, `flush()` and reads wait for nothing. Journaled
        records stay in the journal and are committed by the next start.
        """
        try:
            self._steps()
        except Exception as exc:  # noqa: BLE001 - any failure: said loudly, and callers are refused (`broken`)
            self.broken = LedgerWriteError(
                f"the ledger's writer thread stopped ({type(exc).__name__}: {exc}); records made from now on wait in "
                "the journal (durable mode) or are lost (background mode): restart the process, and report this bug"
            )
            _log.critical("hashed: %s", self.broken, exc_info=True)

    def _steps(self) -> None:
        while True:
            if self._to_sign:  # stored by the next commit, or alone below
                self._busy = 1
                try:
                    self._sign_committed()
                    # Keep the WAL short beside the callers (PASSIVE, its own connection): else a committing caller
                    # meets SQLite's automatic checkpoint, and copies a thousand pages in its own INSERT.
                    self._db.checkpoint()
                finally:
                    self._busy = 0
            self._pull()
            if self._queue:
                self._busy = 1
                self._cycle.acquire()  # released by `_write` as soon as the group is committed
                self._holding = True
                try:
                    shared = time.monotonic() - self.caller_committed < _SHARED_FOR
                    batch = self._first(self._queue, _SHARED_BATCH if shared else _BATCH)
                    if batch:
                        self._write(batch)
                finally:
                    self._release_cycle()
                    self._busy = 0
                self._last_batch = time.monotonic()
                if self._closed and self.broken is not None:
                    return
                if len(self._queue) < 64 and not self._closed:
                    self._kick.wait(self._poll)  # let a group gather
                    self._kick.clear()
                continue
            # Nothing queued: store the signatures alone, unless callers keep committing (each of their commits
            # carries some, `take_ready`) and no flush is waiting.
            quiet = time.monotonic() - self.caller_committed >= self._poll
            if self._ready and (quiet or self._urgent or self._closed):
                self._busy = 1
                try:
                    self._save_signatures()
                finally:
                    self._busy = 0
            if not (self._ready or self._to_sign):
                self._urgent = False
            if self._closed:
                if self._to_sign or self._ready:
                    continue
                return
            if time.monotonic() - self._last_sweep > _SWEEP:
                self._sweep()
            # Callers keep coming: look again after a poll rather than be woken by each one (or store each group of
            # signatures in a transaction of its own, holding the write lock callers wait for).
            if time.monotonic() - self._last_batch < _WARM:
                self._kick.wait(self._poll)
            else:
                self._idle = True  # from now on callers wake the writer: look once more before sleeping
                self._pull()
                if not (self._queue or self._to_sign):
                    self._kick.wait(_ASLEEP)
                self._idle = False
            self._kick.clear()

    def _sign_committed(self) -> None:
        """Sign what callers committed (by the key each record names); the signatures wait in `_ready`."""
        to_sign = self._to_sign
        batch = [to_sign.popleft() for _ in range(len(to_sign))]
        by_key: dict[str, list[tuple[int, bytes, Identity]]] = {}
        for entry in batch:  # one key, except around a rotation
            by_key.setdefault(entry[2].public_key, []).append(entry)
        for group in by_key.values():
            signatures = sign_many(group[0][2], [digest for _, digest, _ in group])
            self._ready.extend(zip((seq for seq, _, _ in group), signatures, strict=True))

    def _sweep(self) -> None:
        """Sign what a crashed process of this agent left unsigned (a live one signs its own within `_SWEEP`)."""
        self._last_sweep = time.monotonic()
        try:
            seal_unsigned(self._db, self._identity(), self._mac(), older_than_ns=time.time_ns() - int(_SWEEP * 1e9))
        except LedgerWriteError:
            _log.warning("hashed: could not look for unsigned records; trying again later", exc_info=True)

    def close(self, timeout: float | None) -> None:
        """Write what is queued (within `timeout`), log what could not be written, stop."""
        self._closed = True
        self._kick.set()
        self._thread.join(timeout)
        self._pull()
        left = self._first(self._queue, 1 << 62)  # all of it; callers may still append: never iterate the live deque
        journaled = [item for item in left if item.mark is not None]
        if journaled:
            _log.warning(
                "hashed: %d records were not committed before the ledger closed; they are kept in the journal "
                "and committed when the ledger next opens",
                len(journaled),
            )
        for item in left:
            if item.mark is None:
                log_lost(item, "ledger closed before the record could be written", self._recipes)
        self._queue.clear()


def _first(queue: collections.deque[Queued], limit: int) -> list[Queued]:
    """The first `limit` queued records, left in the queue, read without an iterator over it.

    Callers append while the writer reads. An iterator of a deque that grew meanwhile raises RuntimeError,
    and one can be caught between its creation and its first step (a garbage collection running a finaliser
    lets another thread in): seen once under load, it killed the writer. Indexing has no such state, and only
    this thread (or one holding the cycle lock) removes from the left.
    """
    if len(queue) <= limit:
        return list(queue)  # one C call from the iterator's creation to its end: no other thread runs meanwhile
    return _first_by_index(queue, limit)


def _first_by_index(queue: collections.deque[Queued], limit: int) -> list[Queued]:
    """`_first` without the GIL: by index only, since another thread may append during any call."""
    return list(map(queue.__getitem__, range(min(limit, len(queue)))))
