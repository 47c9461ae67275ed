"""Group commit (`ledger_sync = "full"`): callers that commit at the same time share one transaction and one fsync.

The unit tests drive `CommitGroups` with a commit function that records the groups it is given; the last test
drives a real agent with `ledger_sync = "full"` from eight threads.
"""

from __future__ import annotations

import threading
import time

from hashed import LedgerWriteError
from hashed.ledger._commit_group import CommitGroups
from hashed.testing import make_hashed


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


class _SlowFirstCommit:
    """Commits groups; the first one waits until the test lets it go, so that others queue behind it."""

    def __init__(self, fail_second: bool = False, sink_fails: bool = False) -> None:
        self.groups: list[list[str]] = []
        self.release = threading.Event()
        self.fail_second = fail_second
        self.sink_fails = sink_fails

    def __call__(self, items: list):
        if not self.groups:
            self.groups.append(list(items))
            self.release.wait(10)
            return None
        self.groups.append(list(items))
        if self.fail_second and len(self.groups) == 2:
            raise LedgerWriteError("disk full")
        return self._sink if self.sink_fails else None

    @staticmethod
    def _sink() -> None:  # what runs once the group is committed (the observer): a failing record sink
        raise ValueError("sink failed")


def _commit_from_threads(groups: CommitGroups, commit: _SlowFirstCommit, names: list[str]) -> dict[str, object]:
    results: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            groups.commit(name)  # type: ignore[arg-type]  # the unit does not look inside items
            results[name] = "committed"
        except (LedgerWriteError, ValueError) as exc:
            results[name] = exc

    first = threading.Thread(target=run, args=(names[0],))
    first.start()
    _wait_until(lambda: commit.groups, "the first commit to start")
    others = [threading.Thread(target=run, args=(name,)) for name in names[1:]]
    for thread in others:
        thread.start()
    _wait_until(lambda: groups.waiting == len(others), "the other callers to queue")
    commit.release.set()
    for thread in [first, *others]:
        thread.join(10)
    return results


def test_callers_that_arrive_during_a_commit_share_the_next_one():
    commit = _SlowFirstCommit()
    groups = CommitGroups(commit)
    names = [f"r{n}" for n in range(8)]

    results = _commit_from_threads(groups, commit, names)

    assert results == dict.fromkeys(names, "committed")  # each returned once its record was committed
    assert commit.groups[0] == ["r0"]
    assert sorted(commit.groups[1]) == names[1:] and len(commit.groups) == 2  # one transaction for seven callers


def test_every_caller_of_a_group_that_cannot_be_committed_gets_the_error_and_the_next_caller_commits():
    commit = _SlowFirstCommit(fail_second=True)
    groups = CommitGroups(commit)
    names = [f"r{n}" for n in range(4)]

    results = _commit_from_threads(groups, commit, names)

    assert results["r0"] == "committed"
    assert all(isinstance(results[name], LedgerWriteError) and "disk full" in str(results[name]) for name in names[1:])
    groups.commit("later")  # type: ignore[arg-type]
    assert commit.groups[-1] == ["later"]


def test_a_sink_that_fails_after_a_group_committed_reaches_only_the_caller_whose_thread_runs_it():
    commit = _SlowFirstCommit(sink_fails=True)
    groups = CommitGroups(commit)
    names = [f"r{n}" for n in range(5)]

    results = _commit_from_threads(groups, commit, names)

    failed = [name for name in names[1:] if isinstance(results[name], ValueError)]
    assert len(failed) == 1  # the caller that committed the group runs the sinks: its call sees the error
    assert all(results[name] == "committed" for name in names[1:] if name not in failed)  # never a failed commit


def test_a_lone_caller_commits_at_once():
    groups_seen: list[list[str]] = []
    groups = CommitGroups(lambda items: groups_seen.append(list(items)))

    groups.commit("only")  # type: ignore[arg-type]

    assert groups_seen == [["only"]] and groups.waiting == 0


def test_an_agent_with_ledger_sync_full_records_every_call_of_many_threads(tmp_path):
    threads = 8
    with make_hashed(tmp_path / ".hashed", ledger_sync="full") as hashed:
        ran = []

        @hashed.guard("send_email")
        def send_email(to: str) -> str:
            ran.append(to)
            return "sent"

        def calls(worker: int) -> None:
            for n in range(50):
                assert send_email(f"user{worker}-{n}@example.com") == "sent"

        workers = [threading.Thread(target=calls, args=(w,)) for w in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert hashed.flush(timeout=10)
        records = list(hashed.ledger.records())
        report = hashed.verify()

    assert len(ran) == threads * 50
    assert [r.kind for r in records].count("decision") == threads * 50
    assert [r.kind for r in records].count("outcome") == threads * 50
    assert report.ok and report.count == threads * 100 and all(r.signed for r in records)
