"""The agent signs a checkpoint at each close; `hashed verify --checkpoint` catches a cut-off tail and a fork (#22)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import orjson
from typer.testing import CliRunner

from hashed.cli.app import app
from hashed.protocol import Checkpoint, CompactRange
from hashed.testing import make_hashed

runner = CliRunner()


def _calls(home: Path, n: int, to: str = "a@example.com", **settings: object) -> None:
    with make_hashed(home, **settings) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        for _ in range(n):
            send(to)


def _checkpoint(home: Path, out: Path) -> Checkpoint:
    result = runner.invoke(app, ["proof", "checkpoint", str(home / "ledger.db"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return Checkpoint.parse(out.read_text().split("\n\n")[0] + "\n")


def _verify(target: Path, checkpoint: Path) -> tuple[int, dict]:
    result = runner.invoke(app, ["verify", "--json", str(target), "--checkpoint", str(checkpoint)])
    return result.exit_code, orjson.loads(result.output)


def _hashes(db: Path) -> list[bytes]:
    with sqlite3.connect(db) as conn:
        return [bytes(h) for (h,) in conn.execute("SELECT hash FROM records ORDER BY seq")]


def test_each_close_signs_a_checkpoint_over_the_whole_ledger_extending_the_last(tmp_path):
    home = tmp_path / ".hashed"
    _calls(home, 3)
    first = _checkpoint(home, tmp_path / "one.cp")
    _calls(home, 2, durability="immediate")  # another process, another mode: it extends the stored tree
    second = _checkpoint(home, tmp_path / "two.cp")
    tree = CompactRange()
    for digest in _hashes(home / "ledger.db"):
        tree.append(digest)
    assert (first.size, second.size) == (6, 10)
    assert second.root == tree.root()  # the incremental tree is the tree of every record
    assert _verify(home / "ledger.db", tmp_path / "one.cp")[0] == 0  # an older checkpoint: a prefix still holds
    assert _verify(home / "ledger.db", tmp_path / "two.cp")[0] == 0


def test_a_tail_cut_off_verifies_as_a_chain_but_not_against_the_checkpoint(tmp_path):
    home = tmp_path / ".hashed"
    _calls(home, 4)
    _checkpoint(home, tmp_path / "cp")
    with sqlite3.connect(home / "ledger.db") as conn:  # the last call's two records removed, signatures too
        conn.execute("DELETE FROM records WHERE seq > 6")
        conn.execute("DELETE FROM signatures WHERE seq > 6")
    assert runner.invoke(app, ["verify", str(home / "ledger.db")]).exit_code == 0  # what a chain cannot show
    code, report = _verify(home / "ledger.db", tmp_path / "cp")
    assert code == 1 and report["error"]["seq"] == 7 and "cut off its tail" in report["error"]["reason"]


def test_a_fork_of_the_history_is_caught_by_the_checkpoint_of_the_other_branch(tmp_path):
    home = tmp_path / "a" / ".hashed"
    _calls(home, 2)
    fork = tmp_path / "b" / ".hashed"
    shutil.copytree(home, fork)  # the same key, two histories from here on
    _calls(home, 2, to="auditor-one@example.com")
    _calls(fork, 2, to="auditor-two@example.com")
    _checkpoint(home, tmp_path / "a.cp")
    assert runner.invoke(app, ["verify", str(fork / "ledger.db")]).exit_code == 0  # each branch is a valid chain
    code, report = _verify(fork / "ledger.db", tmp_path / "a.cp")
    assert code == 1 and report["error"]["seq"] == 8 and "fork" in report["error"]["reason"]


def test_a_checkpoint_altered_after_it_was_signed_is_refused(tmp_path):
    home = tmp_path / ".hashed"
    _calls(home, 1)
    _checkpoint(home, tmp_path / "cp")
    text = (tmp_path / "cp").read_text()
    root = text.split("\n")[2]
    (tmp_path / "forged.cp").write_text(text.replace(root, ("B" if root[0] == "A" else "A") + root[1:]))
    result = runner.invoke(app, ["verify", str(home / "ledger.db"), "--checkpoint", str(tmp_path / "forged.cp")])
    assert result.exit_code == 1 and "not one this chain's key" in result.output
    assert "forged.cp" in result.output and "cannot be read as a ledger" not in result.output  # blames the note
    good = runner.invoke(app, ["verify", str(home / "ledger.db"), "--checkpoint", str(tmp_path / "cp")])
    assert good.exit_code == 0 and "nothing cut off" in good.output


def test_an_export_is_checked_against_the_checkpoint_too(tmp_path):
    home = tmp_path / ".hashed"
    _calls(home, 3)
    _checkpoint(home, tmp_path / "cp")
    export = tmp_path / "export.jsonl"
    with make_hashed(home) as hashed:
        lines = [orjson.dumps({**r.body, "hash": r.hash, "sig": r.sig}) for r in hashed.ledger.records()]
    export.write_bytes(b"\n".join(lines[:-1]) + b"\n")  # one record short
    code, report = _verify(export, tmp_path / "cp")
    assert code == 1 and "cut off" in report["error"]["reason"]
    export.write_bytes(b"\n".join(lines) + b"\n")
    assert _verify(export, tmp_path / "cp")[0] == 0


def test_no_checkpoint_yet_says_so(tmp_path):
    home = tmp_path / ".hashed"
    make_hashed(home).close()
    result = runner.invoke(app, ["proof", "checkpoint", str(home / "ledger.db")])
    assert result.exit_code == 4 and "no signed checkpoint yet" in result.output
