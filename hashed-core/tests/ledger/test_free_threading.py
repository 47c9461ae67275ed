"""`hashed.ledger._free_threading`: on a CPython running without the GIL, the lock-free appends take a lock.

There is no free-threaded interpreter here, so these tests stand in `sys._is_gil_enabled` returning False (what a
3.13t build started with the GIL off says) and check what the ledger decides when it opens, and that its records
still all reach the signed chain that way.
"""

from __future__ import annotations

import collections
import sys
import threading

import pytest

from hashed.ledger._free_threading import LockedJournal, gil_enabled, journal_type
from hashed.ledger._journal import FIRST, Journal
from hashed.ledger._writer import _first_by_index
from hashed.testing import make_hashed

THREADS, CALLS = 8, 60


@pytest.fixture
def no_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)


def test_gil_enabled_asks_the_interpreter_and_assumes_the_gil_where_it_cannot(monkeypatch):
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    assert gil_enabled() and journal_type() is Journal
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False)
    assert not gil_enabled() and journal_type() is LockedJournal
    monkeypatch.delattr(sys, "_is_gil_enabled")  # Python before 3.13: always the GIL
    assert gil_enabled() and journal_type() is Journal


def test_with_the_gil_a_durable_ledger_appends_without_a_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    with make_hashed(tmp_path / ".hashed") as hashed:
        assert type(hashed.ledger._journal) is Journal  # nothing added on the caller's path


@pytest.mark.usefixtures("no_gil")
def test_without_the_gil_a_durable_ledger_locks_every_journal_and_keeps_every_record(tmp_path):
    with make_hashed(tmp_path / ".hashed") as hashed:
        first = hashed.ledger._journal
        assert isinstance(first, LockedJournal)
        first.seal()  # as when it is full: the threads' first calls race to start the next one
        lookup = hashed.guard("lookup")(lambda thread, n: n)
        _call_from_threads(lookup)
        assert isinstance(hashed.ledger._journal, LockedJournal) and hashed.ledger._journal is not first
        hashed.flush()
        records = list(hashed.ledger.records())
        assert hashed.verify().ok and all(r.signed for r in records)
    _assert_every_call_in_order(records)


@pytest.mark.usefixtures("no_gil")
def test_without_the_gil_background_mode_keeps_every_record(tmp_path):
    with make_hashed(tmp_path / ".hashed", durability="background") as hashed:
        lookup = hashed.guard("lookup")(lambda thread, n: n)
        _call_from_threads(lookup)
        hashed.flush()
        records = list(hashed.ledger.records())
        assert hashed.verify().ok and all(r.signed for r in records)
    _assert_every_call_in_order(records)


def test_a_locked_journal_append_waits_while_another_holds_the_journal(tmp_path):
    journal = LockedJournal.create(tmp_path, 4096)
    done = threading.Event()
    with journal._lock:  # another thread in the middle of an append, or of sealing
        appender = threading.Thread(target=lambda: done.set() if journal.append(b"frame\n") else None)
        appender.start()
        assert not done.wait(0.2) and journal.end == FIRST
    appender.join()
    assert done.is_set() and [payload for _, payload in journal.frames()] == [b"frame"]
    journal.seal()
    assert not journal.append(b"late\n") and journal.retired
    journal.discard()


def test_the_writer_copies_its_queue_by_index_without_the_gil():
    queue = collections.deque(range(5))
    assert _first_by_index(queue, 3) == [0, 1, 2]
    assert _first_by_index(queue, 10) == [0, 1, 2, 3, 4]
    assert list(queue) == [0, 1, 2, 3, 4]  # left in the queue until committed


def _call_from_threads(lookup) -> None:
    threads = [threading.Thread(target=lambda t=t: [lookup(t, n) for n in range(CALLS)]) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _assert_every_call_in_order(records) -> None:
    outcomes = [r.body for r in records if r.kind == "decision"]
    assert len(outcomes) == THREADS * CALLS
    for t in range(THREADS):  # each thread's calls in the order it made them
        assert [o["args"]["n"] for o in outcomes if o["args"]["thread"] == t] == list(range(CALLS))
