"""The background writer: callers queue records; one thread places, hashes, signs and commits them in groups.

A group's signatures (made by the helper process while the group is prepared) are stored with the next group,
so callers never wait for the last signature of a group; a crash between the two leaves records unsigned,
which the ledger signs when it next opens (each carries a MAC until then, `_mac.py`, so only the agent's own).

A crash loses what is still queued (at most the last tens of milliseconds). A record that cannot be written is never
dropped silently: with `on_write_error="open"` it goes to the error log; with "closed" it stays queued, and
callers are refused until the disk recovers.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import orjson

from hashed.errors import LedgerWriteError
from hashed.ledger._db import Database, set_meta
from hashed.ledger._journal import FIRST, Journal
from hashed.ledger._mac import Macs
from hashed.ledger._sign_service import SigningPipeline
from hashed.ledger._usage import add_usage
from hashed.protocol._canonical import JsonNumber, encode_prepared, prepare
from hashed.protocol._record import leaf_hash
from hashed.types import LedgerRecord

__all__ = ["JOURNAL_POLL", "BackgroundWriter", "ForgedFrameError", "Queued", "from_frame", "log_lost"]

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
_MAX_QUEUE = 4096  # queued records before callers wait: bounds memory, and the garbage collector's work
_CHUNK = 256  # records per signing request: small enough to overlap, large enough to amortise the round trip
Staged = tuple[int, bytes, "Queued", bytes, "dict[str, Any] | None"]  # seq, hash, item, encoded body, body kept
_INSERT_RECORD = "INSERT INTO records (seq, hash, key, kind, ts, body, mac) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_SIG = "INSERT OR IGNORE INTO signatures (seq, sig) VALUES (?, ?)"


Recipe = tuple[Any, ...]
Recipes = dict[str, Callable[[Recipe], tuple[dict[str, Any], bool]]]


class Queued(NamedTuple):
    """A record waiting for its place in the chain (a tuple: the cheapest immutable thing to make per call).

    `fields` is either the record's fields, or a *recipe*: a tuple of plain values from which the writer builds
    them with `recipes[kind]`, off the caller's time. A recipe holds no objects, only strings, numbers and a
    dict of them, so the garbage collector stops tracking a queued record at its first pass instead of
    promoting it, and what it references, to the old generation: full collections were a fifth of the
    background mode's cost when records carried closures.
    """

    kind: str
    agent: str
    fields: dict[str, Any] | Recipe
    slow: bool
    ts: int
    nonce: str
    usage: tuple[tuple[str, float], ...]
    mark: tuple[Journal, int] | None = None  # journal mode: the frame's journal, and the offset just past it


def built_fields(
    kind: str, fields: dict[str, Any] | Recipe, slow: bool, recipes: Recipes
) -> tuple[dict[str, Any], bool]:
    """A record's fields, built now if what was queued is a recipe."""
    if isinstance(fields, tuple):
        return recipes[kind](fields)
    return fields, slow


class ForgedFrameError(ValueError):
    """A journal frame whose MAC does not hold: this agent did not write it, so it is never committed."""

    def __init__(self, frame: bytes) -> None:
        super().__init__("a journal frame fails its MAC")
        self.frame = frame

    def log(self, journal: str) -> None:
        """Say so, with the frame's bytes (evidence), and go on with the next frame."""
        text = self.frame.decode("utf-8", "backslashreplace")[:4096]
        _log.error("hashed: %s holds a frame this agent did not write; not committed: %s", journal, text)


def from_frame(frame: bytes, macs: Macs, mark: tuple[Journal, int] | None = None) -> Queued:
    """The record a journal frame holds, as the writer queues it (a live process's frame or a dead one's).

    A recipe comes back as a list (JSON has no tuples); fields are prepared again, so that numbers keep their
    exact JSON text.

    Raises:
        ForgedFrameError: the frame's MAC does not hold (see `_mac.py`).
    """
    payload = macs.open_frame(frame)
    if payload is None:
        raise ForgedFrameError(frame)
    kind, agent, fields, slow, ts, nonce = orjson.loads(payload)
    if isinstance(fields, list):
        fields = tuple(fields)
    else:
        fields, slow = prepare(fields)
    return Queued(kind, agent, fields, slow, int(ts), nonce, (), mark)


def journal_marks(items: list[Queued]) -> dict[Journal, int]:
    """Journal mode: how far into each journal `items` reach (the last frame's end, per journal)."""
    return {item.mark[0]: item.mark[1] for item in items if item.mark is not None}


def store_marks(conn: sqlite3.Connection, marks: dict[Journal, int]) -> None:
    """Record, in the transaction that commits the records, how far each journal is committed."""
    for journal, through in marks.items():
        set_meta(conn, f"journal:{journal.name}", through)


def log_lost(item: Queued, why: str, recipes: Recipes) -> None:
    """Never drop a record silently: when it cannot be committed, its content goes to the error log."""
    fields, _ = built_fields(item.kind, item.fields, item.slow, recipes)
    document = {"kind": item.kind, "agent": item.agent, "ts": str(item.ts), "nonce": item.nonce, **fields}
    text = orjson.dumps(document, default=lambda o: o.fragment if isinstance(o, JsonNumber) else str(o)).decode()
    _log.error("hashed: %s; the record is kept only in this log: %s", why, text)


Placer = Callable[[Any], tuple[int, str]]
BodyMaker = Callable[[int, str, int, str, str, str, dict[str, Any]], dict[str, Any]]


class BackgroundWriter:
    """One thread committing queued records in groups, signed."""

    def __init__(
        self,
        db: Database,
        *,
        head: Placer,
        body: BodyMaker,
        pipeline: Callable[[], SigningPipeline],
        key: Callable[[], str],
        mac: Callable[[], Macs],
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
        self._on_error = on_error
        self._observer = observer
        self._queue: collections.deque[Queued] = collections.deque()
        self._queued_usage: dict[str, collections.deque[tuple[int, float]]] = {}
        self._usage_lock = threading.Lock()
        self._kick = threading.Event()
        self._drained = threading.Event()
        self._cycle = threading.Lock()  # held from taking a group to committing it (see `taken`)
        self._holding = False  # whether this writer's thread holds `_cycle`
        self._idle = True
        self._closed = False
        self._busy = 0
        self.broken: LedgerWriteError | None = None
        self._unsaved: list[tuple[int, bytes]] = []  # (seq, signature) of committed records, stored next time
        self._through: dict[Journal, int] = {}  # journal mode: how far each journal is committed
        self._sources: list[Journal] = []  # journal mode: the journals whose frames are still to be read, in order
        self._pull_lock = threading.Lock()
        self._last_batch = 0.0
        self._expected: tuple[int, str] | None = None  # the chain head after this writer's last commit
        self.caller_committed = 0.0  # when a caller last committed to SQLite itself (monotonic seconds)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Queued) -> None:
        """Queue one record (the caller's whole cost in background mode)."""
        if item.usage:
            with self._usage_lock:
                for scope, amount in item.usage:
                    self._queued_usage.setdefault(scope, collections.deque()).append((item.ts, amount))
        self._queue.append(item)
        if self._idle:
            self._kick.set()
        if len(self._queue) > _MAX_QUEUE and self.broken is None and not self._closed:
            self._drained.clear()  # back-pressure: a caller far ahead of the writer waits for it
            self._kick.set()
            self._drained.wait(1.0)

    def follow(self, journal: Journal) -> None:
        """Journal mode: read records from `journal`'s frames, after those of every journal followed before it."""
        with self._pull_lock:
            self._sources.append(journal)

    def _pull(self, limit: int = _MAX_QUEUE) -> None:
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
                for end, payload in journal.frames(journal.pulled):
                    try:
                        queue.append(from_frame(payload, mac, (journal, end)))
                    except ForgedFrameError as exc:
                        exc.log(str(journal.path))
                    journal.pulled = end
                    if len(queue) >= limit:
                        break
                if not sealed or journal.pulled < journal.end:
                    break
                done += 1
            if done:
                del self._sources[:done]

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
            items = list(self._queue)
            self._queue.clear()
            try:
                yield items
            except BaseException:
                self._queue.extendleft(reversed(items))
                raise
            self._drained.set()

    @property
    def busy(self) -> bool:
        """Whether records are waiting to be committed."""
        return bool(self._queue or self._busy or self._unsaved or self.unread)

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
        """Write now (flush, close)."""
        self._kick.set()

    def _loop(self) -> None:
        while True:
            self._pull()
            if self._queue:
                self._busy = 1
                self._cycle.acquire()  # released by `_write` as soon as the group is committed
                self._holding = True
                try:
                    shared = time.monotonic() - self.caller_committed < _SHARED_FOR
                    batch = list(itertools.islice(self._queue, _SHARED_BATCH if shared else _BATCH))
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
            if self._unsaved:  # nothing came for a whole poll (or a flush asked): store the signatures alone
                self._busy = 1
                try:
                    self._save_signatures()
                finally:
                    self._busy = 0
                continue
            if self._closed:
                return
            if time.monotonic() - self._last_batch < _WARM:
                self._kick.wait(self._poll)  # calls keep coming: look again soon rather than be woken by each one
            else:
                self._idle = True  # from now on callers wake the writer: look once more before sleeping
                self._pull()
                if not self._queue:
                    self._kick.wait(1.0)
                self._idle = False
            self._kick.clear()

    def _write(self, batch: list[Queued]) -> None:
        """Place, hash and commit `batch`; its signatures are stored with the next group (or alone, when idle).

        The records are built, hashed and sent for signing before the write lock is taken, on the chain head this
        writer last committed: the lock is then held only for the INSERTs, so a caller that commits to SQLite
        itself (a window count, an approval) or another process waits for that, not for the Python work. If the
        head moved meanwhile (another process appended), the group is built again inside the transaction.
        Callers are released as soon as the records are committed: the helper process finishes signing them
        while they go on, instead of making them wait for the last signature of a large group.
        """
        unsaved = self._unsaved
        with self._pipeline() as pipeline:  # the helper signs each chunk while the next is prepared
            expected = self._expected
            staged = self._stage(batch, expected, pipeline) if expected is not None else None
            stale = 0  # signatures asked for a group built on a head that moved: not stored
            try:
                with self._db.write() as conn:
                    head = self._head(conn)
                    if staged is None or head != expected:
                        stale = 0 if staged is None else len(staged)
                        staged = self._stage(batch, head, pipeline)
                    key, mac = self._key(), self._mac()
                    rows = [
                        (seq, digest, key, item.kind, item.ts, data, mac.row(digest))
                        for seq, digest, item, data, _ in staged
                    ]
                    conn.executemany(_INSERT_RECORD, rows)
                    marks = journal_marks(batch)
                    store_marks(conn, marks)  # committed with the records: a replay resumes after them
                    if unsaved:
                        conn.executemany(_INSERT_SIG, unsaved)
                    usage = [(scope, item.ts, amount) for item in batch for scope, amount in item.usage]
                    if usage:
                        add_usage(conn, usage)
            except LedgerWriteError as exc:
                self._expected = None
                self._failed(exc, batch)
                return
            except BaseException:
                self._expected = None
                raise
            self._expected = (staged[-1][0], staged[-1][1].hex())
            self._unsaved = []
            self.broken = None
            self._done(batch)
            self.committed(marks)
            self._release_cycle()  # the rest (signatures, checkpoint, observer) never holds up `taken`
            signatures = pipeline.results()[stale:]
        self._unsaved = [(seq, sig) for (seq, *_), sig in zip(staged, signatures, strict=True)]
        self._db.checkpoint()
        observer = self._observer()
        if observer is not None:
            for (seq, digest, item, data, kept), sig in zip(staged, signatures, strict=True):
                body = kept if kept is not None else orjson.loads(data)  # an observer that came mid-group
                observer(LedgerRecord(seq, item.kind, body, digest.hex(), sig.hex()))

    def _stage(self, batch: list[Queued], head: tuple[int, str], pipeline: SigningPipeline) -> list[Staged]:
        """Build, hash and send for signing each record of `batch`, placed after `head`."""
        seq, prev = head
        staged: list[Staged] = []
        keep = self._observer() is not None  # else each body dies young, unseen by the GC's old ages
        recipes = self._recipes
        chunk: list[bytes] = []
        for item in batch:
            seq += 1
            fields, slow = built_fields(item.kind, item.fields, item.slow, recipes)
            body = self._body(seq, prev, item.ts, item.nonce, item.kind, item.agent, fields)
            data = encode_prepared(body, slow)
            digest = leaf_hash(data)
            staged.append((seq, digest, item, data, body if keep else None))
            prev = digest.hex()
            chunk.append(digest)
            if len(chunk) == _CHUNK:
                pipeline.add(chunk)
                chunk = []
        if chunk:
            pipeline.add(chunk)
        return staged

    def _release_cycle(self) -> None:
        if self._holding:
            self._holding = False
            self._cycle.release()

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

    def _save_signatures(self) -> None:
        """Store the last group's signatures when no records follow to carry them."""
        try:
            with self._db.write() as conn:
                conn.executemany(_INSERT_SIG, self._unsaved)
        except LedgerWriteError as exc:
            if self._closed:
                _log.error("hashed: signatures not stored (%s); the ledger signs these records when it next opens", exc)
                self._unsaved = []
                return
            _log.error("hashed: cannot store signatures yet (%s); they are kept and retried", exc)
            time.sleep(0.2)
            return
        self._unsaved = []
        self._db.checkpoint()

    def _failed(self, exc: LedgerWriteError, batch: list[Queued]) -> None:
        if self._on_error == "open":
            for item in batch:
                log_lost(item, f"ledger write failed ({exc})", self._recipes)
            self._done(batch)
            return
        if self.broken is None:
            _log.error("hashed: ledger write failed, guarded calls are refused until it recovers: %s", exc)
        self.broken = exc
        time.sleep(0.2)

    def _done(self, batch: list[Queued]) -> None:
        with self._usage_lock:
            for item in batch:
                self._queue.popleft()
                for scope, _ in item.usage:
                    self._queued_usage[scope].popleft()
        if len(self._queue) <= _MAX_QUEUE // 2:
            self._drained.set()

    def close(self, timeout: float | None) -> None:
        """Write what is queued (within `timeout`), log what could not be written, stop."""
        self._closed = True
        self._kick.set()
        self._thread.join(timeout)
        self._pull()
        journaled = [item for item in self._queue if item.mark is not None]
        if journaled:
            _log.warning(
                "hashed: %d records were not committed before the ledger closed; they are kept in the journal "
                "and committed when the ledger next opens",
                len(journaled),
            )
        for item in self._queue:
            if item.mark is None:
                log_lost(item, "ledger closed before the record could be written", self._recipes)
        self._queue.clear()
