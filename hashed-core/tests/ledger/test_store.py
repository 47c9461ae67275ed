from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import orjson
import pytest

from hashed import Hashed, Identity, LedgerError, LedgerWriteError, ToolCall
from hashed.ledger import GENESIS, Ledger, read_export, verify_records, write_export
from hashed.ledger._journal import frames
from hashed.ledger._mac import FRAME_MAC
from hashed.ledger._writer import Writer
from hashed.testing import FIXED_SEED, make_hashed


def _guarded_calls(hashed: Hashed, n: int) -> None:
    @hashed.guard("send_email")
    def send_email(to: str, body: str) -> str:
        return "sent"

    for i in range(n):
        assert send_email(f"user{i}@example.com", "hi") == "sent"


def _rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT r.seq, r.hash, r.body, s.sig FROM records r LEFT JOIN signatures s USING (seq) ORDER BY r.seq"
        ).fetchall()


def test_each_guarded_call_commits_a_signed_decision_and_outcome(hashed_offline):
    _guarded_calls(hashed_offline, 3)
    hashed_offline.flush()
    records = list(hashed_offline.ledger.records())
    assert [r.kind for r in records] == ["decision", "outcome"] * 3
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0].body["prev"] == GENESIS
    assert all(b.body["prev"] == a.hash for a, b in zip(records, records[1:]))
    assert all(r.signed for r in records)
    report = hashed_offline.verify()
    assert report.ok and report.count == 6 and report.keys == [hashed_offline.public_key]


def test_decision_record_is_committed_before_the_body_runs_in_immediate_mode(tmp_path):
    with make_hashed(tmp_path / ".hashed", durability="immediate") as hashed:
        seen = []

        @hashed.guard("probe")
        def probe() -> None:
            seen.extend(_rows(hashed.ledger.path))  # a separate connection sees only committed rows

        probe()
        assert len(seen) == 1
        assert orjson.loads(seen[0][2])["kind"] == "decision"


def test_decision_record_is_in_the_journal_before_the_body_runs_in_durable_mode(hashed_offline):
    seen = []

    @hashed_offline.guard("probe")
    def probe() -> None:  # what a process killed right now would leave: the file's bytes
        [journal] = hashed_offline.ledger.journals.glob("*.journal")
        image = journal.read_bytes()
        seen.extend(orjson.loads(payload[FRAME_MAC:])[:2] for _, payload in frames(image, 0, len(image)))

    probe()
    assert seen == [["decision", "agent"]]  # (kind, agent): the decision is on disk


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("body", "hash does not match"),
        ("sig", "signature does not verify"),
        ("hash", "hash does not match"),
    ],
)
def test_flipping_any_byte_of_a_record_is_detected(hashed_offline, damage, reason):
    _guarded_calls(hashed_offline, 3)
    hashed_offline.flush()
    path = hashed_offline.ledger.path
    seq, digest, body, sig = _rows(path)[3]
    column = {"body": body, "sig": sig, "hash": digest}[damage]
    flipped = bytearray(column)
    flipped[len(flipped) // 2] ^= 0x01
    if damage == "body":
        flipped = bytearray(body.replace(b'"status":"ok"', b'"status":"ko"'))
    with sqlite3.connect(path) as conn:
        table = "signatures" if damage == "sig" else "records"
        conn.execute(f"UPDATE {table} SET {damage} = ? WHERE seq = ?", (bytes(flipped), seq))
    report = hashed_offline.ledger.verify()
    assert not report.ok
    assert report.error.sequence == 4
    assert reason in report.error.reason
    assert report.count == 3


def test_every_single_byte_flip_in_an_export_is_detected(hashed_offline, tmp_path):
    _guarded_calls(hashed_offline, 1)
    hashed_offline.flush()
    export = tmp_path / "ledger.jsonl"
    with export.open("wb") as out:
        write_export(hashed_offline.ledger.records(), out)
    original = export.read_bytes()
    assert verify_records(read_export(export)).ok
    first_line = original.index(b"\n")
    detected = 0
    for offset in range(first_line):
        damaged = bytearray(original)
        damaged[offset] ^= 0x20 if chr(damaged[offset]).isalpha() else 0x01
        export.write_bytes(bytes(damaged))
        try:
            report = verify_records(read_export(export))
        except Exception:  # a line that is no longer JSON is also a detection
            detected += 1
            continue
        detected += not report.ok
    assert detected == first_line


def test_deleted_and_reordered_records_are_detected(hashed_offline):
    _guarded_calls(hashed_offline, 3)
    hashed_offline.flush()
    records = [r.to_json() for r in hashed_offline.ledger.records()]
    missing_middle = verify_records(records[:2] + records[3:])
    assert (missing_middle.error.sequence, missing_middle.count) == (4, 2)
    assert "expected sequence 3" in missing_middle.error.reason
    missing_first = verify_records(records[1:])
    assert missing_first.error.sequence == 2
    swapped = verify_records([records[0], records[2], records[1], *records[3:]])
    assert swapped.error.sequence == 3
    replayed = verify_records([*records, records[-1]])
    assert replayed.error.sequence == 6 and "repeated" in replayed.error.reason


def test_a_ledger_refuses_to_be_continued_by_another_key(hashed_offline):
    _guarded_calls(hashed_offline, 1)
    hashed_offline.flush()  # in the ledger, not only in this process's journal
    stranger = Identity.from_seed(bytes(32))
    with pytest.raises(LedgerError, match="continues with key"):
        Ledger(hashed_offline.ledger.path, stranger)


def test_threads_never_repeat_a_sequence_number_or_fork_the_chain(hashed_offline):
    errors = []

    def worker():
        try:
            _guarded_calls(hashed_offline, 50)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    report = hashed_offline.verify()
    assert report.ok and report.count == 8 * 50 * 2


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hashed.testing import make_hashed
    hashed = make_hashed(Path(sys.argv[1]))
    @hashed.guard("send_email")
    def send_email(to):
        return "sent"
    for i in range(int(sys.argv[2])):
        send_email(f"user{i}@example.com")
        if len(sys.argv) > 3:
            print(i, flush=True)
    hashed.close()
    """
)


@pytest.mark.parametrize("durability", ["durable", "immediate"])
def test_processes_share_one_chain_without_forking(tmp_path, durability):
    home = tmp_path / ".hashed"
    env = {**os.environ, "HASHED_DURABILITY": durability}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(home), "100"], stderr=subprocess.PIPE, env=env)
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    with make_hashed(home) as hashed:
        report = hashed.verify()
        assert report.ok, report.error
        assert report.count == 3 * 100 * 2


def test_kill_9_loses_no_record_of_a_call_that_returned(tmp_path):
    home = tmp_path / ".hashed"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(home), "100000", "progress"], stdout=subprocess.PIPE, text=True
    )
    returned = -1
    for line in proc.stdout:
        returned = int(line.split()[0])
        if returned >= 200:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    # Every call that printed its index had returned, so both of its records must be there.
    with make_hashed(home) as hashed:  # opening seals what the killed process left unsigned
        report = hashed.verify()
        assert report.ok, report.error
        assert report.unsigned == 0
        outcomes = [r for r in hashed.ledger.records() if r.kind == "outcome"]
        assert len(outcomes) >= returned + 1


def test_disk_full_fails_closed_and_the_body_does_not_run(tmp_path):
    with make_hashed(tmp_path / ".hashed", durability="immediate") as hashed:
        ran = []

        @hashed.guard("send_email")
        def send_email(to: str) -> str:
            ran.append(to)
            return "sent"

        send_email("a@example.com")
        _fill_disk(hashed)
        with pytest.raises(LedgerWriteError, match="database or disk is full"):
            send_email("b@example.com" + "x" * 20000)
        assert ran == ["a@example.com"]


def test_durable_mode_keeps_calls_in_its_journal_while_the_disk_is_full_then_refuses_and_loses_none(tmp_path):
    home = tmp_path / ".hashed"
    hashed = make_hashed(home, raise_internal_errors=False)
    ran = []
    send = hashed.guard("send_email")(lambda to: ran.append(to[:1]) or "sent")
    send("a@example.com")
    hashed.flush()
    _fill_disk(hashed)

    def send_until_refused() -> None:  # the calls go on (kept in the journal) until the writer has failed
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            send("b" * 20000)

    with pytest.raises(LedgerWriteError, match="database or disk is full"):
        send_until_refused()
    refused_at = len(ran)
    with pytest.raises(LedgerWriteError):
        send("c@example.com")
    assert len(ran) == refused_at and ran[0] == "a" and set(ran[1:]) == {"b"}  # refused bodies never ran
    with hashed.ledger.db.lock:
        hashed.ledger.db.conn.execute("PRAGMA max_page_count = 4294967294")  # space again
    assert hashed.flush(timeout=10)
    decisions = [r for r in hashed.ledger.records() if r.kind == "decision"]
    assert [d.body["args"]["to"][:1] for d in decisions] == ran and hashed.verify().ok
    hashed.close()


def test_a_read_only_ledger_fails_closed_with_a_clear_error(tmp_path):
    with make_hashed(tmp_path / ".hashed", durability="immediate") as hashed:
        ran = []
        send = hashed.guard("send_email")(lambda to: ran.append(to))
        send("a@example.com")
        with hashed.ledger.db.lock:
            hashed.ledger.db.conn.execute("PRAGMA query_only = 1")  # what a read-only file or mount reports
        with pytest.raises(LedgerWriteError, match="readonly database.*fix the file's permissions"):
            send("b@example.com")
        assert ran == ["a@example.com"]
        with hashed.ledger.db.lock:
            hashed.ledger.db.conn.execute("PRAGMA query_only = 0")


def test_disk_full_fails_open_when_configured_and_logs_the_record(tmp_path, caplog):
    hashed = make_hashed(
        tmp_path / ".hashed", durability="immediate", ledger_on_error="open", raise_internal_errors=False
    )
    ran = []

    @hashed.guard("send_email")
    def send_email(to: str) -> str:
        ran.append(to)
        return "sent"

    _fill_disk(hashed)
    with caplog.at_level(logging.ERROR, logger="hashed"):
        assert send_email("b@example.com" + "x" * 20000) == "sent"
    assert len(ran) == 1
    assert "could not be recorded" in caplog.text and "ledger_on_error=open" in caplog.text
    hashed.close()


def _fill_disk(hashed: Hashed) -> None:
    # SQLite reports SQLITE_FULL once the file may not grow: the same error as a full disk.
    with hashed.ledger.db.lock:
        conn = hashed.ledger.db.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")


def test_background_mode_commits_and_signs_everything_on_flush(tmp_path):
    with make_hashed(tmp_path / ".hashed", durability="background") as hashed:
        _guarded_calls(hashed, 200)
        assert hashed.flush(timeout=30)
        report = hashed.verify()
        assert report.ok and report.count == 400 and report.unsigned == 0


def test_background_mode_logs_records_it_cannot_write_when_open(tmp_path, caplog):
    hashed = make_hashed(tmp_path / ".hashed", durability="background", ledger_on_error="open")
    _fill_disk(hashed)
    with caplog.at_level(logging.ERROR, logger="hashed.ledger"):
        hashed.check(ToolCall("send_email", {"to": "x" * 50000}))
        hashed.flush(timeout=10)
    assert "the record is kept only in this log" in caplog.text and "send_email" in caplog.text
    hashed.close()


def test_background_mode_fails_closed_after_a_write_error(tmp_path):
    hashed = make_hashed(tmp_path / ".hashed", durability="background")
    _fill_disk(hashed)
    hashed.check(ToolCall("send_email", {"to": "x" * 50000}))
    hashed.flush(timeout=1)
    with pytest.raises(LedgerWriteError):
        hashed.check(ToolCall("send_email", {"to": "y"}))
    with hashed.ledger.db.lock:
        hashed.ledger.db.conn.execute("PRAGMA max_page_count = 1000000")
    assert hashed.flush(timeout=10)
    hashed.check(ToolCall("send_email", {"to": "z"}))
    hashed.close()
    with make_hashed(tmp_path / ".hashed") as again:
        report = again.verify()
        assert report.ok and report.count == 2  # x (written once the disk had room) and z; y was refused


def test_fixed_seed_is_the_documented_test_identity(hashed_identity):
    assert hashed_identity.public_key == type(hashed_identity).from_seed(FIXED_SEED).public_key


def test_background_mode_records_arguments_as_they_were_when_decided(tmp_path):
    with make_hashed(tmp_path / ".hashed", durability="background") as hashed:
        send = hashed.guard("send_email")(lambda to, cc: "sent")
        cc = ["a@example.com"]
        send("b@example.com", cc)
        cc.append("eve@example.com")  # the tool's caller changes the list after the call: the record must not
        send("c@example.com", ())
        assert hashed.flush(timeout=10)
        decisions = [r.body["args"] for r in hashed.ledger.records() if r.kind == "decision"]
        assert decisions == [{"to": "b@example.com", "cc": ["a@example.com"]}, {"to": "c@example.com", "cc": []}]
        assert hashed.verify().ok


@pytest.mark.parametrize("redacting", [True, False], ids=["policy redacts", "policy redacts nothing"])
@pytest.mark.parametrize("mode", ["background", "durable"])
def test_queueing_modes_write_the_same_records_as_immediate_mode(tmp_path, mode, redacting):
    # Background and durable (journal) modes queue plain calls that the writer thread turns into records later;
    # what they write must be exactly what immediate mode writes in the caller for the same calls: arguments
    # (redacted, digested), results, errors, rules, policy.
    redact = "redact: [password]\n" if redacting else ""
    policy = f"version: 1\ndefault: allow\n{redact}rules: [{{id: no-rm, tools: [rm], effect: deny}}]\n"

    def run(durability: str) -> list[dict]:
        with make_hashed(tmp_path / durability, policy=policy, durability=durability) as hashed:

            @hashed.guard("login")
            def login(user: str, password: str, tries: int = 1) -> str:
                return f"welcome {user}"

            @hashed.guard("lookup")
            def lookup(key: str) -> dict:
                return {"key": key, "values": [1, 2.5, None]}

            @hashed.guard("explode")
            def explode(why: str) -> None:
                raise ValueError(why)

            @hashed.guard("measure")
            def measure(x: float) -> str:
                return "measured"

            @hashed.guard("store")
            def store(raw: bytes) -> str:
                return "stored"

            rm = hashed.guard("rm")(lambda path: "gone")
            for x in (float("nan"), float("inf"), float("-inf"), -0.0, 1.0, 0.1, 2**60, 2**70):
                measure(x)  # numbers JSON cannot carry as they are: a journal must not change them
            store(b"\x00\xff")
            login("ann", "hunter2")
            login("bob", password="x" * 5000, tries=3)
            assert lookup("k1") == {"key": "k1", "values": [1, 2.5, None]}
            with pytest.raises(ValueError, match="boom"):
                explode("boom")
            assert rm("/") != "gone"  # refused: the body never ran
            assert hashed.flush(timeout=10)
            assert hashed.verify().ok
            volatile = {"ts", "nonce", "seq", "prev", "call", "duration_ns"}
            return [{k: v for k, v in r.body.items() if k not in volatile} for r in hashed.ledger.records()]

    immediate, queued = run("immediate"), run(mode)
    assert queued == immediate
    logins = [r for r in immediate if r["kind"] == "decision" and r["tool"] == "login"]
    assert logins[0]["args"] == {"user": "ann", "password": "[REDACTED]" if redacting else "hunter2", "tries": 1}
    assert [r["status"] for r in immediate if r["kind"] == "outcome"] == ["ok"] * 12 + ["error"]
    measured = [r["args"]["x"] for r in immediate if r["kind"] == "decision" and r["tool"] == "measure"]
    assert measured[:3] == ["nan", "inf", "-inf"]  # as immediate mode records them, kept by every mode


@pytest.mark.parametrize("durability", ["durable", "background"])
def test_the_writer_places_its_group_after_records_another_writer_added_meanwhile(tmp_path, durability):
    # The writer builds and signs a group on the head it last committed, before taking the lock; when another
    # process (here: an immediate-mode instance) appended meanwhile, it must build the group again on the new head
    # and store the new group's signatures, not the first build's.
    home = tmp_path / ".hashed"
    with make_hashed(home, durability=durability) as ours, make_hashed(home, durability="immediate") as theirs:
        send, other = ours.guard("send_email")(lambda to: "sent"), theirs.guard("send_email")(lambda to: "sent")
        for i in range(20):
            send(f"ours{i}@example.com")
            assert ours.flush(timeout=10)  # our writer now expects its own head
            other(f"theirs{i}@example.com")  # the head moves under it
        assert ours.flush(timeout=10) and theirs.flush(timeout=10)
        records = list(ours.ledger.records())
        assert [r.seq for r in records] == list(range(1, 81))
        assert all(r.signed for r in records)
        report = ours.verify()
        assert report.ok and report.count == 80


def test_background_records_whose_signatures_a_crash_lost_are_signed_when_the_ledger_next_opens(tmp_path, monkeypatch):
    # The writer stores a group's signatures with the next group; a process that dies in between leaves its last
    # group committed but unsigned. Simulate that death: the last signatures are never stored.
    monkeypatch.setattr(Writer, "_save_signatures", lambda self: self.take_ready())
    home = tmp_path / ".hashed"
    with make_hashed(home, durability="background") as hashed:
        _guarded_calls(hashed, 50)
        assert hashed.flush(timeout=10)
    unsigned = [seq for seq, _, _, sig in _rows(home / "ledger.db") if sig is None]
    assert unsigned  # committed, hash-chained, not signed yet
    monkeypatch.undo()
    with make_hashed(home) as again:
        report = again.verify()
        assert report.ok and report.count == 100 and report.unsigned == 0


def test_after_the_writer_thread_dies_a_background_ledger_left_open_logs_each_record_at_once(
    tmp_path, monkeypatch, caplog
):
    # With `ledger_on_error = "open"` calls run on once the writer has died; their records were queued in memory
    # for a thread that would never take them: the queue grew with every call until the process ended.
    hashed = make_hashed(tmp_path / ".hashed", durability="background", ledger_on_error="open")
    send = hashed.guard("send_email")(lambda to: "sent")
    send("a@example.com")
    assert hashed.flush(timeout=10)

    def a_bug(self: Writer, batch: object) -> None:
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(Writer, "_write", a_bug)
    caplog.set_level(logging.ERROR, "hashed.ledger")
    send("b@example.com")
    assert not hashed.flush(timeout=5)  # the writer took b's records and died
    writer = hashed.ledger._writer
    assert writer.broken is not None
    held = writer.queued  # b's records, which the writer held when it died (logged when the ledger closes)
    for n in range(300):
        assert send(f"late-{n}@example.com") == "sent"
    assert writer.queued == held <= 2  # nothing more held for a thread that is gone
    logged = [r.getMessage() for r in caplog.records if "writer thread has stopped" in r.getMessage()]
    assert len(logged) == 600 and all("send_email" in line for line in logged)  # a decision and an outcome each
    assert any("late-299@example.com" in line for line in logged)
    hashed.close(timeout=1)


def test_a_writer_thread_that_fails_unexpectedly_refuses_the_next_calls_and_the_next_start_loses_none(
    tmp_path, monkeypatch, caplog
):
    # A bug in the writer's thread killed it silently: calls went on being journaled with nothing committing them,
    # and flush() or a read waited for nothing. Now it is an error callers see (refused, as a write failure is).
    home = tmp_path / ".hashed"
    hashed = make_hashed(home, raise_internal_errors=False)
    ran = []
    send = hashed.guard("send_email")(lambda to: ran.append(to) or "sent")
    send("a@example.com")

    def a_bug(self: Writer, batch: object) -> None:
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(Writer, "_write", a_bug)
    caplog.set_level(logging.CRITICAL, "hashed.ledger")
    send("b@example.com")  # journaled before the writer looks
    assert not hashed.flush(timeout=5)
    with pytest.raises(LedgerWriteError, match="writer thread stopped .*RuntimeError: a bug in the writer"):
        send("c@example.com")
    assert ran == ["a@example.com", "b@example.com"] and "writer thread stopped" in caplog.text
    monkeypatch.undo()
    hashed.close(timeout=1)
    with make_hashed(home) as again:  # the journal is committed by the next start
        decisions = [r.body["args"]["to"] for r in again.ledger.records() if r.kind == "decision"]
        assert decisions == ["a@example.com", "b@example.com"] and again.verify().ok
