"""Durable mode's journal: records survive a killed process from the moment the call goes on, and reach the signed
chain."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import orjson
import pytest
from typer.testing import CliRunner

from hashed import Hashed, LedgerError, LedgerWriteError
from hashed.cli.app import app
from hashed.errors import ConfigError
from hashed.ledger._journal import Journal, dead_journals
from hashed.ledger._mac import Macs
from hashed.testing import FIXED_SEED, make_hashed

AGENTS_MACS = Macs(FIXED_SEED)  # the key make_hashed's agent authenticates its frames with

POLICY = """
version: 1
default: deny
rules:
  - {id: mail, tools: [send_email], effect: allow, rate: {per: 1h, max_calls: 3}}
  - {id: rest, tools: ["*"], effect: allow}
"""


def _journals(home):
    return sorted((home / "ledger.db.journals").glob("*.journal"))


def test_durable_mode_commits_and_signs_every_record_and_leaves_no_journal(tmp_path):
    home = tmp_path / ".hashed"
    with make_hashed(home) as hashed:
        send = hashed.guard("lookup")(lambda key, n: f"{key}:{n}")
        for i in range(50):
            assert send(f"k{i}", i) == f"k{i}:{i}"
        assert len(_journals(home)) == 1  # this process's journal, while it runs
        hashed.flush()
        records = list(hashed.ledger.records())
        assert [r.kind for r in records] == ["decision", "outcome"] * 50
        assert [r.body["args"] for r in records[::2]] == [{"key": f"k{i}", "n": i} for i in range(50)]
        assert all(r.signed for r in records) and hashed.verify().ok
        said = CliRunner().invoke(app, ["verify", "--json", str(home / "ledger.db")]).output
        assert orjson.loads(said)["journal_records"] == 0  # the live journal is all committed: nothing waits
    assert _journals(home) == []  # everything was committed, so the journal is gone


WINDOWED = """
version: 1
default: deny
rules: [{id: wires, tools: [wire_money], effect: allow, rate: {per: 1h, max_calls: 2}}]
"""


@pytest.mark.parametrize("policy", [None, WINDOWED], ids=["plain", "windowed"])
def test_a_record_is_safe_before_the_body_runs_even_if_the_process_is_killed_there(tmp_path, policy):
    # A windowed call is counted in SQLite at once and its record goes through the journal like any other.
    home = tmp_path / ".hashed"
    script = textwrap.dedent(
        """
        import os, signal, sys
        from pathlib import Path
        from hashed.testing import ALLOW_ALL, make_hashed
        hashed = make_hashed(Path(sys.argv[1]), policy=sys.argv[2] or ALLOW_ALL)
        @hashed.guard("wire_money")
        def wire_money(to, amount):
            os.kill(os.getpid(), signal.SIGKILL)  # dies inside the body: the decision must already be safe
        wire_money("acct-9", 50)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script, str(home), policy or ""], timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert len(_journals(home)) == 1  # left behind by the dead process
    said = CliRunner().invoke(app, ["verify", str(home / "ledger.db")]).output
    assert "0 records verified" in said and "1 record(s) wait in a journal beside the ledger" in " ".join(said.split())
    with make_hashed(home, **({"policy": policy} if policy else {})) as hashed:  # commits what the dead one left
        records = list(hashed.ledger.records())
        assert [(r.kind, r.body["tool"], r.body["args"], r.body["effect"]) for r in records] == [
            ("decision", "wire_money", {"to": "acct-9", "amount": 50}, "allow")
        ]
        report = hashed.verify()
        assert report.ok and report.unsigned == 0
        if policy:  # the killed call counts: one more is allowed this hour, then the window is full
            wire = hashed.guard("wire_money")(lambda to, amount: "sent")
            assert wire("acct-9", 1) == "sent"
            assert "2 calls per 1h" in wire("acct-9", 1)
    assert _journals(home) == []


def test_kill_9_loses_no_record_of_a_call_that_returned(tmp_path):
    home = tmp_path / ".hashed"
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from hashed.testing import make_hashed
        hashed = make_hashed(Path(sys.argv[1]))
        send_email = hashed.guard("send_email")(lambda to: "sent")
        for i in range(1_000_000):
            send_email(f"user{i}@example.com")
            print(i, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(home)], stdout=subprocess.PIPE, text=True)
    returned = -1
    for line in proc.stdout:
        returned = int(line)
        if returned >= 3000:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    with make_hashed(home) as hashed:
        report = hashed.verify()
        assert report.ok, report.error
        assert report.unsigned == 0
        outcomes = [r.body["call"] for r in hashed.ledger.records() if r.kind == "outcome"]
        decisions = {r.body["call"]: r.body["args"]["to"] for r in hashed.ledger.records() if r.kind == "decision"}
    assert len(outcomes) >= returned + 1  # every call that printed its index had returned
    assert len(set(outcomes)) == len(outcomes)  # and none was committed twice
    assert {decisions[call] for call in outcomes} >= {f"user{i}@example.com" for i in range(returned + 1)}


def test_two_openers_after_a_crash_commit_each_frame_once(tmp_path):
    home = tmp_path / ".hashed"
    with make_hashed(home) as hashed:
        hashed.guard("lookup")(lambda: "x")()
    journal = Journal.create(home / "ledger.db.journals", 4096)  # a dead process's journal with two frames
    for i in range(2):
        frame = orjson.dumps(["outcome", "default", {"call": f"c{i}", "tool": "lookup"}, False, 10**18 + i, f"n{i}"])
        journal.append(AGENTS_MACS.seal_frame(frame))
    journal.close()
    with make_hashed(home):
        assert list(dead_journals(home / "ledger.db.journals")) == []  # replayed and deleted by the first opener
        with make_hashed(home) as second:
            second.flush()
    with make_hashed(home) as hashed:
        calls = [r.body.get("call") for r in hashed.ledger.records() if r.kind == "outcome"]
        assert calls.count("c0") == 1 and calls.count("c1") == 1
        assert hashed.verify().ok


def test_windows_are_counted_in_sqlite_at_once_so_every_process_sees_them(tmp_path):
    home = tmp_path / ".hashed"
    with make_hashed(home, policy=POLICY) as hashed, make_hashed(home, policy=POLICY) as other:
        send = hashed.guard("send_email")(lambda to: "sent")
        assert [send("a@example.com") for _ in range(3)] == ["sent"] * 3
        assert not other.check(_call("send_email")).allowed  # the other process sees three calls this hour
        refused = send("a@example.com")
        assert refused.decision.rule_id == "mail" and not refused.decision.allowed


@pytest.mark.parametrize("settings", [{"ledger_sync": "full"}, {"durability": "immediate"}])
def test_a_power_cut_promise_or_immediate_mode_commits_each_record_to_sqlite_before_the_call_goes_on(
    tmp_path, settings
):
    home = tmp_path / ".hashed"
    with make_hashed(home, **settings) as hashed:
        seen = []
        reader = sqlite3.connect(home / "ledger.db")  # another process's view: no flush, no journal
        hashed.guard("send_email")(lambda to: seen.append(reader.execute("SELECT kind FROM records").fetchall()))("a")
        assert seen == [[("decision",)]] and not _journals(home)
        reader.close()


def test_durability_is_one_of_the_three_modes_by_name(tmp_path):
    with pytest.raises(ConfigError, match="durability: Input should be 'durable', 'immediate' or 'background'"):
        Hashed(home=tmp_path / ".hashed", durability="journal")  # the journal is durable mode's, not a mode


def test_a_journal_that_cannot_be_created_is_a_clear_error(tmp_path):
    home = tmp_path / ".hashed"
    home.mkdir()
    (home / "ledger.db.journals").write_text("not a directory")
    with pytest.raises(LedgerWriteError, match="cannot create the ledger journal"):
        make_hashed(home)


def test_values_json_cannot_carry_are_committed_directly(tmp_path):
    with make_hashed(tmp_path / ".hashed") as hashed:
        assert hashed.guard("blob")(lambda data: b"ok")(b"\x00\x01") == b"ok"
        hashed.flush()
        records = list(hashed.ledger.records())
        assert [r.kind for r in records] == ["decision", "outcome"] and hashed.verify().ok


def _call(tool):
    from hashed import ToolCall

    return ToolCall(tool, {"to": "a@example.com"})


def test_full_journals_are_replaced_and_deleted_once_committed(tmp_path, monkeypatch):
    monkeypatch.setattr("hashed.ledger._appending._JOURNAL_CAPACITY", 4096)  # ≈ 10 records per journal file
    home = tmp_path / ".hashed"
    with make_hashed(home) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        for i in range(300):
            send(f"user{i}@example.com")
        hashed.flush()
        send("last@example.com")  # the writer deletes full journals after its next commit
        hashed.flush()
        assert len(_journals(home)) == 1  # only the one in use is left
        records = list(hashed.ledger.records())
        assert len(records) == 2 * 301 and hashed.verify().ok
    assert _journals(home) == []


@pytest.mark.parametrize("capacity", ["one journal", "a new journal every ≈ 10 records"])
def test_threads_share_journals_without_losing_or_reordering_a_record(tmp_path, monkeypatch, capacity):
    # Appends take no lock; a full journal is sealed while other threads may be appending to it.
    if capacity != "one journal":
        monkeypatch.setattr("hashed.ledger._appending._JOURNAL_CAPACITY", 4096)
    home = tmp_path / ".hashed"
    with make_hashed(home) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")

        def work(n):
            for i in range(200):
                send(f"t{n}-{i}@example.com")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        hashed.flush()
        records = list(hashed.ledger.records())
        assert [r.seq for r in records] == list(range(1, 1601)) and hashed.verify().ok
        calls: dict[str, list[str]] = {}
        for r in records:  # each call's decision comes before its outcome
            calls.setdefault(r.body["call"], []).append(r.kind)
        assert len(calls) == 800 and all(kinds == ["decision", "outcome"] for kinds in calls.values())
        for n in range(4):  # each thread's calls are in the chain in the order it made them
            mine = [r.body["args"]["to"] for r in records if r.kind == "decision" and r.body["args"]["to"][1] == str(n)]
            assert mine == [f"t{n}-{i}@example.com" for i in range(200)]
    assert _journals(home) == []


def test_the_chain_keeps_the_order_of_calls_around_a_windowed_step(tmp_path):
    with make_hashed(tmp_path / ".hashed", policy=POLICY) as hashed:
        lookup = hashed.guard("lookup")(lambda key: key)
        send = hashed.guard("send_email")(lambda to: "sent")  # counted in SQLite at once, recorded via the journal
        lookup("a")
        send("x@example.com")
        lookup("b")
        hashed.flush()
        records = list(hashed.ledger.records())
        assert all(r.signed for r in records)
    kinds = [(r.kind, r.body["tool"]) for r in records]
    assert kinds == [(kind, tool) for tool in ("lookup", "send_email", "lookup") for kind in ("decision", "outcome")]


@pytest.mark.parametrize("lost", ["its newline", "a byte in its middle"])
def test_a_frame_cut_short_by_a_crash_ends_the_journal_there(tmp_path, lost):
    journal = Journal.create(tmp_path, 4096)
    assert all(journal.append(f"frame {i}\n".encode()) for i in range(3))
    ends = [end for end, _ in journal.frames()]
    journal.close()
    image = bytearray((tmp_path / journal.path.name).read_bytes())
    # The process was killed in the middle of copying the last frame: what never made it is still the file's zeros
    # (a copy may store its bytes in any order).
    image[ends[2] - 1 if lost == "its newline" else ends[2] - 4] = 0
    (tmp_path / journal.path.name).write_bytes(bytes(image))
    [dead] = dead_journals(tmp_path)
    assert [payload for _, payload in dead.frames()] == [b"frame 0", b"frame 1"]
    dead.close()


def test_a_journal_of_an_earlier_version_whose_frames_carry_no_mac_is_kept_and_never_committed(tmp_path):
    home = tmp_path / ".hashed"
    make_hashed(home).close()
    frame = orjson.dumps(["outcome", "default", {"call": "c-old", "tool": "lookup"}, False, 10**18, "n-old"])
    old = home / "ledger.db.journals" / "99-old.journal"
    old.write_bytes(b"HASHEDJ2" + frame + b"\n" + bytes(4096))  # anyone could have written these bytes
    with pytest.raises(LedgerError, match=r"earlier version of hashed-core.*move the file aside"):
        make_hashed(home)
    assert old.read_bytes().startswith(b"HASHEDJ2" + frame)  # kept for a person to look at
    old.unlink()
    with make_hashed(home) as hashed:
        assert [r for r in hashed.ledger.records() if r.kind == "outcome"] == []


def test_a_frame_appended_while_the_journal_is_being_sealed_is_counted_in_its_end(tmp_path):
    # Another thread may hold the mapping and append between the seal reading the position and closing it.
    journal = Journal.create(tmp_path, 4096)
    assert journal.append(b"before\n")
    real = journal._map

    class Racing:  # the mapping as the seal sees it: another thread's append lands just before it closes
        def tell(self):
            return real.tell()

        def close(self):
            real.write(b"racing\n")
            real.close()

    journal._map = Racing()
    journal.seal()
    assert journal.retired and not journal.append(b"after\n")
    assert [payload for _, payload in journal.frames()] == [b"before", b"racing"]
    assert journal.end == [end for end, _ in journal.frames()][-1]  # the writer deletes it only past "racing"
    journal.discard()


def test_pages_made_ready_ahead_while_another_thread_appends_change_no_frame(tmp_path):
    # The writer thread faults in the pages past the end while callers append: it must never touch a byte.
    journal = Journal.create(tmp_path, 3 << 20)
    payloads = [(f"frame {i} " * 20).encode() for i in range(12_000)]  # ≈ 2.3 MiB, past the first ready MiB
    done = threading.Event()

    def prepare() -> None:
        while not done.is_set():
            journal.prepare_ahead()

    helper = threading.Thread(target=prepare)
    helper.start()
    try:
        stored = [journal.append(payload + b"\n") for payload in payloads]
    finally:
        done.set()
        helper.join()
    assert all(stored)
    assert [payload for _, payload in journal.frames()] == payloads
    journal.discard()


def test_the_journal_on_disk_holds_no_redacted_argument_and_no_tool_result(tmp_path):
    policy = "version: 1\ndefault: allow\nredact: [password]\n"
    home = tmp_path / ".hashed"
    with make_hashed(home, policy=policy) as hashed:
        login = hashed.guard("login")(lambda user, password: "session-token-SECRET-RESULT")
        assert login("ada", "hunter2-SECRET-ARG") == "session-token-SECRET-RESULT"
        [journal] = _journals(home)
        on_disk = journal.read_bytes()
        assert b"ada" in on_disk  # the call is there
        assert b"hunter2-SECRET-ARG" not in on_disk and b"SECRET-RESULT" not in on_disk
        assert oct(journal.parent.stat().st_mode & 0o777) == "0o700" and oct(journal.stat().st_mode & 0o777) == "0o600"
        hashed.flush()
        decision, outcome = hashed.ledger.records()
        assert decision.body["args"]["user"] == "ada" and decision.body["args"]["password"] != "hunter2-SECRET-ARG"
        assert outcome.body["result_digest"]


_FORKING = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from hashed.testing import make_hashed
    hashed = make_hashed(Path(sys.argv[1]), durability=sys.argv[2])
    send = hashed.guard("send_email")(lambda to: "sent")
    send("before@example.com")
    hashed.flush()  # committed: a child that closed its copy of the ledger now would delete the parent's journal
    pid = os.fork()
    if pid == 0:  # the child uses its parent's Hashed (or not), then leaves normally: atexit runs
        if sys.argv[3] == "uses":
            assert send("child@example.com") == "sent"
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    send("after@example.com")  # the parent goes on, its journal untouched by the child
    hashed.close()
    """
)


@pytest.mark.parametrize("child", ["uses", "ignores"])
@pytest.mark.parametrize("durability", ["durable", "immediate", "background"])
def test_a_forked_child_can_use_its_parents_hashed_and_nothing_is_lost(tmp_path, durability, child):
    home = tmp_path / ".hashed"
    proc = subprocess.run(
        [sys.executable, "-c", _FORKING, str(home), durability, child], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    with make_hashed(home) as hashed:
        records = list(hashed.ledger.records())
        sent = [r.body["args"]["to"].split("@")[0] for r in records if r.kind == "decision"]
        assert sent == (["before", "child", "after"] if child == "uses" else ["before", "after"])
        assert sum(r.kind == "outcome" for r in records) == len(sent)  # every call that ran is recorded
        report = hashed.verify()
        assert report.ok and report.unsigned == 0
    assert _journals(home) == []


def test_a_killed_parents_journal_is_committed_while_its_forked_child_lives_on(tmp_path):
    # The child inherits the parent's journal file and its lock; it must let go of them, or the parent's records
    # would wait for the child to exit.
    home = tmp_path / ".hashed"
    script = textwrap.dedent(
        """
        import os, signal, sys, time
        from pathlib import Path
        from hashed.testing import make_hashed
        hashed = make_hashed(Path(sys.argv[1]))
        pid = os.fork()
        if pid == 0:  # a worker that outlives its parent
            time.sleep(60)
            os._exit(0)
        print(pid, flush=True)
        @hashed.guard("wire_money")
        def wire_money(to, amount):
            os.kill(os.getpid(), signal.SIGKILL)
        wire_money("acct-9", 50)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(home)], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    try:
        assert proc.wait(timeout=60) == -signal.SIGKILL
        os.kill(child, 0)  # still alive
        with make_hashed(home) as hashed:
            decisions = [r.body["tool"] for r in hashed.ledger.records() if r.kind == "decision"]
            assert decisions == ["wire_money"]
    finally:
        os.kill(child, signal.SIGKILL)
        proc.stdout.close()


@pytest.mark.parametrize("damage", ["a frame this version cannot read", "a file that is not a journal"])
def test_a_journal_that_cannot_be_read_stops_the_start_with_what_to_do(tmp_path, damage):
    home = tmp_path / ".hashed"
    make_hashed(home).close()
    if damage == "a file that is not a journal":
        stranger = home / "ledger.db.journals" / "123-notes.journal"
        stranger.parent.mkdir(mode=0o700, exist_ok=True)
        stranger.write_bytes(b"someone else's bytes, not frames")
    else:
        journal = Journal.create(home / "ledger.db.journals", 4096)
        unreadable = orjson.dumps(["mystery", "default", ["not", "a", "recipe"], False, 1, "n"])
        journal.append(AGENTS_MACS.seal_frame(unreadable))  # the agent's own frame, that this version cannot read
        journal.close()
    before = {path: path.read_bytes() for path in _journals(home)}
    with pytest.raises(LedgerError, match=r"cannot commit the records left in the journal .*move the file aside"):
        make_hashed(home)
    assert {path: path.read_bytes() for path in _journals(home)} == before  # kept, byte for byte
    said = orjson.loads(CliRunner().invoke(app, ["verify", "--json", str(home / "ledger.db")]).output)
    unreadable = [str(path) for path in before] if damage == "a file that is not a journal" else []
    assert said["journal_unreadable"] == unreadable
