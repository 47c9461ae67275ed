"""An attacker who can write the agent's files but holds no key cannot get a record signed by the agent (#14).

Every case forges the way such an attacker would: a valid hash chain, the agent's public key in the `key` column,
only the signature missing, or a frame appended to a journal. The agent must never sign or commit it; `hashed
verify` must fail on it, naming it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from hashed import Identity, LedgerError
from hashed.cli.app import app
from hashed.ledger import read_ledger, verify_records
from hashed.ledger._journal import FIRST, Journal, frames
from hashed.ledger._mac import Macs
from hashed.protocol import canonical_bytes, record_hash
from hashed.protocol._record import signing_message
from hashed.testing import FIXED_SEED, make_hashed

AGENT = Identity.from_seed(FIXED_SEED)  # make_hashed's agent
ATTACKER = Identity.from_seed(bytes(range(1, 33)))


def _ledger_with_calls(home: Path, calls: int = 3, **settings: object) -> None:
    with make_hashed(home, **settings) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        for i in range(calls):
            send(f"user{i}@example.com")


def _append_forgery(db: Path, **fields: object) -> int:
    """Chain one record onto the head, as the agent would, but without a signature; returns its seq."""
    with sqlite3.connect(db) as conn:
        seq, digest, body = conn.execute("SELECT seq, hash, body FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        record = orjson.loads(body)
        record.update(seq=seq + 1, prev=bytes(digest).hex(), ts=str(int(record["ts"]) + 1))
        record.update({"nonce": f"{seq + 1:f>32}", **fields})
        conn.execute(
            "INSERT INTO records (seq, hash, key, kind, ts, body) VALUES (?, ?, ?, ?, ?, ?)",
            (
                seq + 1,
                bytes.fromhex(record_hash(record)),
                AGENT.public_key,
                record["kind"],
                int(record["ts"]),
                canonical_bytes(record),
            ),
        )
    return seq + 1


def _signed(db: Path) -> set[int]:
    with sqlite3.connect(db) as conn:
        return {seq for (seq,) in conn.execute("SELECT seq FROM signatures")}


def _verify(db: Path, *options: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["verify", "--json", *options, str(db)])
    return result.exit_code, orjson.loads(result.output)


@pytest.mark.parametrize("durability", ["durable", "immediate", "background"])
def test_an_unsigned_record_appended_without_the_key_is_never_signed_and_verify_names_it(tmp_path, durability):
    home = tmp_path / ".hashed"
    _ledger_with_calls(home, durability=durability)
    db = home / "ledger.db"
    forged = _append_forgery(db, tool="wire_money", args={"to": "attacker", "amount": 10**6})

    code, report = _verify(db)
    assert code == 1 and report["error"] == {"seq": forged, "reason": "not signed"}

    with pytest.raises(LedgerError, match=rf"seq {forged}\) is neither signed nor authenticated by this agent"):
        make_hashed(home, durability=durability)
    assert forged not in _signed(db)
    assert _verify(db)[0] == 1  # still refused: the start signed nothing


def test_a_forged_key_rotation_to_the_attackers_key_is_refused(tmp_path):
    home = tmp_path / ".hashed"
    _ledger_with_calls(home)
    db = home / "ledger.db"
    forged = _append_forgery(db, kind="key_rotation", new_key=ATTACKER.public_key)
    assert _verify(db)[1]["error"]["seq"] == forged
    with pytest.raises(LedgerError, match="neither signed nor authenticated"):
        make_hashed(home)
    assert forged not in _signed(db)


def test_a_rewritten_tail_whose_signatures_were_dropped_is_refused(tmp_path):
    home = tmp_path / ".hashed"
    _ledger_with_calls(home, calls=4)
    db = home / "ledger.db"
    with sqlite3.connect(db) as conn:  # rewrite the last two records (the attacker's version of events)
        head = conn.execute("SELECT max(seq) FROM records").fetchone()[0]
        conn.execute("DELETE FROM records WHERE seq > ?", (head - 2,))
        conn.execute("DELETE FROM signatures WHERE seq > ?", (head - 2,))
    first = _append_forgery(db, tool="send_email", args={"to": "attacker@example.com"})
    _append_forgery(db)
    assert _verify(db)[1]["error"]["seq"] == first
    with pytest.raises(LedgerError, match="neither signed nor authenticated"):
        make_hashed(home)
    assert {first, first + 1}.isdisjoint(_signed(db))


def test_a_record_forged_under_a_running_agent_is_never_signed_while_the_agents_own_records_are(tmp_path, caplog):
    home = tmp_path / ".hashed"
    _ledger_with_calls(home, durability="immediate")
    db = home / "ledger.db"
    with make_hashed(home, durability="immediate") as hashed:
        forged = _append_forgery(db, tool="wire_money")  # between two calls of the running agent
        hashed.guard("send_email")(lambda to: "sent")("late@example.com")  # chained after it: the agent's own
    caplog.set_level(logging.ERROR, "hashed.ledger")
    with make_hashed(home, durability="immediate") as hashed:  # its start signs what is left unsigned
        pass
    signed = _signed(db)
    with sqlite3.connect(db) as conn:
        head = conn.execute("SELECT max(seq) FROM records").fetchone()[0]
    assert forged not in signed and set(range(forged + 1, head + 1)) <= signed
    assert f"ledger record {forged} is unsigned and this agent did not write it" in caplog.text
    assert _verify(db)[1]["error"] == {"seq": forged, "reason": "not signed"}


@pytest.mark.parametrize("durability", ["durable", "immediate", "background"])
def test_the_agents_own_records_left_unsigned_by_a_stop_are_signed_at_the_next_start(tmp_path, durability):
    home = tmp_path / ".hashed"
    _ledger_with_calls(home, calls=5, durability=durability)
    db = home / "ledger.db"
    with sqlite3.connect(db) as conn:  # as a process killed before it stored its last signatures leaves it
        head = conn.execute("SELECT max(seq) FROM records").fetchone()[0]
        conn.execute("DELETE FROM signatures WHERE seq > ?", (head - 4,))
    code, report = _verify(db)
    assert code == 1 and report["error"] == {"seq": head - 3, "reason": "not signed"}
    assert _verify(db, "--in-flight")[0] == 0  # a live agent's tail: accepted when asked, and reported
    assert _verify(db, "--in-flight")[1]["unsigned"] == 4
    make_hashed(home, durability=durability).close()
    assert set(range(1, head + 1)) <= _signed(db)
    code, report = _verify(db)
    assert code == 0 and report["unsigned"] == 0


def test_in_flight_accepts_only_a_bounded_tail(tmp_path):
    home = tmp_path / ".hashed"
    _ledger_with_calls(home, calls=5_001, durability="background")  # 10,002 records
    db = home / "ledger.db"
    with sqlite3.connect(db) as conn:  # an unsigned record 10,000 records back: not a live process's tail
        conn.execute("DELETE FROM signatures WHERE seq IN (2, 10002)")
    code, report = _verify(db, "--in-flight")
    assert code == 1 and report["error"]["seq"] == 2
    make_hashed(home).close()  # the agent's own: signed again at the start
    code, report = _verify(db, "--in-flight")
    assert code == 0 and report["unsigned"] == 0


def test_verify_without_in_flight_says_what_to_do(tmp_path):
    home = tmp_path / ".hashed"
    _ledger_with_calls(home, calls=2)
    db = home / "ledger.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM signatures WHERE seq = (SELECT max(seq) FROM records)")
    result = CliRunner().invoke(app, ["verify", str(db)])
    assert result.exit_code == 1
    assert "not signed" in result.output and "--in-flight" in result.output


def test_a_frame_forged_into_a_dead_journal_is_not_committed_and_the_agents_own_frames_are(tmp_path, caplog):
    home = tmp_path / ".hashed"
    _ledger_with_calls(home)
    journal = Journal.create(home / "ledger.db.journals", 4096)  # as a killed process leaves it, plus a forgery
    ours = orjson.dumps(["outcome", "default", {"call": "c-ours", "tool": "lookup"}, False, 10**18, "n1"])
    theirs = orjson.dumps(["outcome", "default", {"call": "c-theirs", "tool": "wire_money"}, False, 10**18 + 1, "n2"])
    journal.append(Macs(FIXED_SEED).seal_frame(ours))
    journal.append(Macs(ATTACKER.seed).seal_frame(theirs))  # a MAC, but not under the agent's key
    journal.append(b"0" * 32 + theirs + b"\n")
    journal.close()
    caplog.set_level(logging.ERROR, "hashed.ledger")
    with make_hashed(home) as hashed:
        calls = [r.body.get("call") for r in hashed.ledger.records() if r.kind == "outcome"]
    assert "c-ours" in calls and "c-theirs" not in calls
    assert caplog.text.count("holds a frame this agent did not write") == 2
    assert _verify(home / "ledger.db")[0] == 0


def test_a_ledger_of_schema_1_is_upgraded_in_place(tmp_path):
    home = tmp_path / ".hashed"
    _ledger_with_calls(home, calls=2)
    db = home / "ledger.db"
    with sqlite3.connect(db) as conn:  # what version 1 wrote: no mac column
        conn.execute("ALTER TABLE records DROP COLUMN mac")
        conn.execute("PRAGMA user_version = 1")
    _ledger_with_calls(home, calls=2, durability="immediate")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 8
    assert _verify(db)[0] == 0


@pytest.mark.parametrize("keep_mac", [True, False], ids=["mac-kept", "mac-rewritten"])
def test_a_frame_rewritten_in_a_running_agents_journal_is_not_committed(tmp_path, caplog, keep_mac):
    # A frame changed on disk after the caller wrote it and before the writer reads it is not committed: the
    # agent's MAC over the frame no longer holds, whether the attacker keeps the old MAC or writes one of his own.
    home = tmp_path / ".hashed"
    caplog.set_level(logging.ERROR, "hashed.ledger")
    with make_hashed(home) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        ledger = hashed.ledger
        with ledger._writer._pull_lock:  # the writer reads no frame meanwhile
            send("alice@example.com")
            journal = ledger._journal
            image = journal.path.read_bytes()
            start = image.index(b"alice@example.com")
            os.pwrite(journal._fd, b"mallory@evils.com", start)  # as long: the frame still parses
            if not keep_mac:  # a MAC of the attacker's own making over the changed frame (no key: a wrong one)
                os.pwrite(journal._fd, b"0" * 32, max(image.rfind(b"\n", 0, start) + 1, FIRST))
        send("bob@example.com")
        assert ledger.flush(10)
        decisions = [r.body["args"]["to"] for r in ledger.records() if r.kind == "decision"]
    assert decisions == ["bob@example.com"]  # the rewritten decision is neither the caller's nor committed
    assert "holds a frame this agent did not write" in caplog.text and "mallory@evils.com" in caplog.text
    assert _verify(home / "ledger.db")[0] == 0


def _nonces(home: Path) -> list[str]:
    with sqlite3.connect(home / "ledger.db") as conn:
        return [orjson.loads(body)["nonce"] for (body,) in conn.execute("SELECT body FROM records ORDER BY seq")]


def test_the_agents_own_frames_copied_into_a_dead_journal_are_not_committed_twice(tmp_path, caplog):
    # Their MACs hold (the agent wrote them), but the ledger has them already: committing them again would sign one
    # call as two, and the backend would refuse the copy's reused nonce and, the chain broken, every record after it.
    home = tmp_path / ".hashed"
    with make_hashed(home) as hashed:
        send = hashed.guard("transfer_money")(lambda to, amount: "sent")
        with hashed.ledger._writer._pull_lock:  # read the journal before the writer deletes it
            send("acct-9", 500)
            image = hashed.ledger._journal.path.read_bytes()
    ours = [frame for _, frame in frames(image, 0, len(image))]
    assert len(ours) == 2  # the call's decision and outcome
    copy = Journal.create(home / "ledger.db.journals", 4096)  # no process holds it: replayed at the next start
    for frame in [*ours, ours[0]]:  # twice over, and the decision once more
        copy.append(frame + b"\n")
    copy.close()
    caplog.set_level(logging.ERROR, "hashed.ledger")
    with make_hashed(home) as hashed:
        send = hashed.guard("transfer_money")(lambda to, amount: "sent")
        send("acct-9", 7)  # the agent goes on after it
    nonces = _nonces(home)
    assert len(nonces) == 4 and len(set(nonces)) == 4  # each call once: a backend accepts every record
    assert caplog.text.count("holds a copy of a record already committed") == 3
    assert _verify(home / "ledger.db")[0] == 0


def test_bytes_written_past_a_running_agents_journal_end_are_not_committed(tmp_path):
    # The writer reads its own journal only as far as this process appended: a copy of one of its frames put after
    # that, where the writer would find it, is not the agent's record.
    home = tmp_path / ".hashed"
    with make_hashed(home) as hashed:
        send = hashed.guard("transfer_money")(lambda to, amount: "sent")
        ledger = hashed.ledger
        with ledger._writer._pull_lock:
            send("acct-9", 500)
            journal = ledger._journal
            image = journal.path.read_bytes()
            first = next(frame for _, frame in frames(image, 0, len(image)))
            os.pwrite(journal._fd, first + b"\n", journal.end)
        assert ledger.flush(10)
        nonces = _nonces(home)
    assert len(nonces) == 2 and len(set(nonces)) == 2


@pytest.mark.parametrize("parallel", [False, True], ids=["one-thread", "threads"])
def test_verify_refuses_a_record_that_reuses_a_nonce_even_signed(tmp_path, parallel):
    # What a replayed frame became before the ledger checked for copies: signed, chained, and refused by any
    # backend (and with it every record after it). `hashed verify` says so instead of ✓.
    home = tmp_path / ".hashed"
    _ledger_with_calls(home, calls=3)
    db = home / "ledger.db"
    with sqlite3.connect(db) as conn:
        first = orjson.loads(conn.execute("SELECT body FROM records WHERE seq = 1").fetchone()[0])
    copy = _append_forgery(db, nonce=first["nonce"])
    with sqlite3.connect(db) as conn:
        digest = conn.execute("SELECT hash FROM records WHERE seq = ?", (copy,)).fetchone()[0]
        conn.execute("INSERT INTO signatures VALUES (?, ?)", (copy, AGENT.sign(signing_message(bytes(digest)))))
    records = list(read_ledger(db))
    with ThreadPoolExecutor(2) if parallel else contextlib.nullcontext() as executor:
        report = verify_records(records, executor=executor)
    assert report.error is not None and report.error.sequence == copy and report.error.code == "nonce_reused"
    code, report_json = _verify(db)
    assert code == 1 and report_json["error"]["seq"] == copy and "nonce already used" in report_json["error"]["reason"]


@contextlib.contextmanager
def _journal_sealed_after(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Journal]]:
    """A running agent with small journals after one call; once the body is done, a call that fills the journal."""
    monkeypatch.setattr("hashed.ledger._appending._JOURNAL_CAPACITY", 4096)
    with make_hashed(home) as hashed:
        send = hashed.guard("transfer_money")(lambda to, amount: "sent")
        send("acct-9", 500)
        journal = hashed.ledger._journal
        yield send, journal
        send("acct-" + "9" * 4000, 7)  # does not fit: the journal is sealed, the call goes to a new one
        assert hashed.ledger._journal is not journal
        assert hashed.ledger.flush(10)


def test_a_copy_planted_where_a_full_journal_ends_is_not_committed_when_it_is_sealed(tmp_path, monkeypatch, caplog):
    # Sealing a full journal also reads the frames other threads appended while it sealed: a copy of one of the
    # agent's frames written where the journal ends, into room the next call's frame does not fit, was read there
    # and committed a second time.
    caplog.set_level(logging.ERROR, "hashed.ledger")
    home = tmp_path / ".hashed"
    with _journal_sealed_after(home, monkeypatch) as (_, journal):
        image = journal.path.read_bytes()
        first = next(frame for _, frame in frames(image, 0, len(image)))
        room = journal.size - journal.end
        assert len(first) + 1 < room < 4000  # the copy fits; the next call's frame will not
        os.pwrite(journal._fd, first + b"\n", journal.end)
    nonces = _nonces(home)
    assert len(nonces) == 4 and len(set(nonces)) == 4
    assert "holds a copy of a record already committed" in caplog.text
    assert _verify(home / "ledger.db")[0] == 0


@pytest.mark.parametrize("ledger_readable", [True, False], ids=["ledger-read", "ledger-unreadable"])
def test_frames_other_threads_appended_while_a_journal_was_sealed_are_committed(tmp_path, monkeypatch, ledger_readable):
    # What sealing reads past the journal's end for: a thread's append that lands after the sealing thread read the
    # end and before it closed the file. Played here by writing one call's two frames past the end, as such an
    # append leaves them; they are the agent's own and new, so they are committed, once. If the ledger cannot be
    # read to look for an original, they are committed too (and the writer goes on).
    if not ledger_readable:

        def unreadable(conn: sqlite3.Connection, times: object) -> set[str]:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr("hashed.ledger._journal_feed.committed_nonces", unreadable)
    home = tmp_path / ".hashed"
    with _journal_sealed_after(home, monkeypatch) as (send, journal):
        at = journal.end

        def racing(frame: bytes) -> bool:
            nonlocal at
            at += os.pwrite(journal._fd, frame, at)
            return True

        journal.append = racing  # type: ignore[method-assign]
        send("acct-9", 600)
        del journal.append
    with sqlite3.connect(home / "ledger.db") as conn:
        bodies = [orjson.loads(body) for (body,) in conn.execute("SELECT body FROM records ORDER BY seq")]
    assert [b.get("args", {}).get("amount") for b in bodies if b["kind"] == "decision"] == [500, 600, 7]
    assert len({b["nonce"] for b in bodies}) == 6
    assert _verify(home / "ledger.db")[0] == 0
