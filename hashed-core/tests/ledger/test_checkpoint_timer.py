"""Checkpoints while the agent runs (every N records or T seconds), and after a key rotation (#22)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from hashed.cli.app import app
from hashed.identity import Identity
from hashed.protocol import Checkpoint, CompactRange, NoteVerifier, agent_origin, open_checkpoint, sign_checkpoint
from hashed.testing import FIXED_SEED, make_hashed

runner = CliRunner()
AGENT = Identity.from_seed(FIXED_SEED)
ORIGIN = agent_origin(AGENT.public_key)


def _sizes(ledger: Path) -> list[int]:
    with sqlite3.connect(ledger) as conn:
        return [size for (size,) in conn.execute("SELECT size FROM checkpoints ORDER BY size")]


def _wait_for_checkpoint(ledger: Path, timeout: float = 20.0) -> list[int]:
    """Poll (a background thread signs it) until the ledger holds a checkpoint; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (sizes := _sizes(ledger)):
        assert time.monotonic() < deadline, "no periodic checkpoint was signed"
        time.sleep(0.05)
    return sizes


@pytest.mark.parametrize(
    ("every", "seconds"), [pytest.param(4, 0, id="every-4-records"), pytest.param(0, 0.2, id="every-200ms")]
)
def test_a_running_agent_signs_checkpoints_before_it_closes(tmp_path, every, seconds):
    home = tmp_path / ".hashed"
    with make_hashed(home, checkpoint_records=every, checkpoint_interval=seconds) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        for _ in range(5):
            send("a@example.com")
        hashed.flush()
        sizes = _wait_for_checkpoint(home / "ledger.db")  # the agent is still open: no close signed it
        assert 0 < sizes[0] <= 10
        note = runner.invoke(app, ["proof", "checkpoint", str(home / "ledger.db")]).stdout
    held = tmp_path / "periodic.checkpoint"
    held.write_text(note)
    result = runner.invoke(app, ["verify", str(home / "ledger.db"), "--checkpoint", str(held)])
    assert result.exit_code == 0, result.output  # a periodic checkpoint is a prefix of the final history
    assert _sizes(home / "ledger.db")[-1] == 10


def test_no_periodic_checkpoint_when_both_periods_are_zero(tmp_path):
    home = tmp_path / ".hashed"
    with make_hashed(home, checkpoint_records=0, checkpoint_interval=0) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        send("a@example.com")
        hashed.flush()
        assert _sizes(home / "ledger.db") == []
    assert _sizes(home / "ledger.db") == [2]  # the close still signs one


def _rotated(home: Path) -> Identity:
    """Three calls (a checkpoint at 6), then a process that calls twice, rotates the key, and calls twice more."""
    with make_hashed(home) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        for _ in range(3):
            send("a@example.com")
    with make_hashed(home, key_passphrase="pw") as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        send("a@example.com")
        send("a@example.com")
        new = hashed.rotate_key()
        send("b@example.com")
        send("b@example.com")
    return new


def test_checkpoints_continue_after_a_key_rotation_signed_by_the_new_key(tmp_path):
    home = tmp_path / ".hashed"
    new = _rotated(home)
    assert _sizes(home / "ledger.db") == [6, 15]  # 6, then 4 + the rotation record + 4
    note = runner.invoke(app, ["proof", "checkpoint", str(home / "ledger.db")]).stdout
    signed = open_checkpoint(note, [NoteVerifier(ORIGIN, bytes.fromhex(new.public_key))])
    assert (signed.checkpoint.origin, signed.checkpoint.size) == (ORIGIN, 15)  # same log name, the new key signs
    held = tmp_path / "after-rotation.checkpoint"
    held.write_text(note)
    result = runner.invoke(app, ["verify", str(home / "ledger.db"), "--checkpoint", str(held)])
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "rotated.bundle"
    assert (
        runner.invoke(app, ["logs", "export", "--bundle", str(bundle), "--ledger", str(home / "ledger.db")]).exit_code
        == 0
    )
    report = orjson.loads(runner.invoke(app, ["verify", "--json", str(bundle), "--key", AGENT.public_key]).stdout)
    assert (report["verdict"], report["keys"], report["checkpoints"]) == ("ok", [AGENT.public_key, new.public_key], 2)


def test_the_rotated_out_key_cannot_sign_a_checkpoint_past_the_rotation(tmp_path):
    home = tmp_path / ".hashed"
    _rotated(home)
    with sqlite3.connect(home / "ledger.db") as conn:
        tree = CompactRange()
        tree.extend(bytes(h) for (h,) in conn.execute("SELECT hash FROM records ORDER BY seq"))
    stolen = tmp_path / "stolen.checkpoint"  # the right root, signed by the old key (leaked after the rotation)
    stolen.write_text(sign_checkpoint(Checkpoint(ORIGIN, 15, tree.root()), AGENT))
    result = runner.invoke(app, ["verify", str(home / "ledger.db"), "--checkpoint", str(stolen)])
    assert result.exit_code == 1 and "key in force at size 15" in " ".join(result.output.split())
    bundle = tmp_path / "rotated.bundle"
    runner.invoke(app, ["logs", "export", "--bundle", str(bundle), "--ledger", str(home / "ledger.db")])
    lines = bundle.read_bytes().splitlines()
    line = orjson.loads(lines[2])
    line["note"] = stolen.read_text()
    lines[2] = orjson.dumps(line)
    bundle.write_bytes(b"\n".join(lines) + b"\n")
    report = orjson.loads(runner.invoke(app, ["verify", "--json", str(bundle)]).stdout)
    assert report["verdict"] == "bad_checkpoint" and "size 15" in report["reason"]
