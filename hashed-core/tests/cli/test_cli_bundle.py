"""An offline audit bundle, written and checked as a user would (#22): each tampering is caught, by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from hashed.cli.app import app
from hashed.identity import Identity
from hashed.protocol import (
    GENESIS,
    Checkpoint,
    MemoryNodeStore,
    NoteVerifier,
    agent_origin,
    record_hash,
    root_at,
    sign_checkpoint,
    signing_message,
    write_bundle,
)
from hashed.testing import FIXED_SEED, make_hashed
from hashed.witness import Witness, WitnessServer, WitnessStore

runner = CliRunner()
AGENT = Identity.from_seed(FIXED_SEED)
ORIGIN = agent_origin(AGENT.public_key)


def _calls(home: Path, n: int, to: str = "a@example.com") -> None:
    """One agent process: `n` guarded calls (two records each), then close (which signs a checkpoint)."""
    with make_hashed(home) as hashed:
        send = hashed.guard("send_email")(lambda to: "sent")
        for _ in range(n):
            send(to)


def _export(home: Path, out: Path) -> Path:
    result = runner.invoke(app, ["logs", "export", "--bundle", str(out), "--ledger", str(home / "ledger.db")])
    assert result.exit_code == 0, result.output
    return out


def _verify(bundle: Path, *options: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["verify", "--json", str(bundle), *options])
    return result.exit_code, orjson.loads(result.stdout)


def _lines(bundle: Path) -> list[dict]:
    return [orjson.loads(line) for line in bundle.read_bytes().splitlines()]


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


@pytest.fixture
def agent(tmp_path):
    """An agent that ran twice (checkpoints at 6 and 12 records), and its bundle."""
    home = tmp_path / "agent" / ".hashed"
    _calls(home, 3)
    _calls(home, 3)
    return home, _export(home, tmp_path / "agent.bundle")


def test_bundle_of_a_good_history_verifies_offline_with_the_key_pinned(agent):
    home, bundle = agent
    code, report = _verify(bundle, "--key", AGENT.public_key)
    assert (code, report["verdict"], report["records"], report["checkpoints"], report["covered"]) == (
        0,
        "ok",
        12,
        2,
        12,
    )
    vkey = NoteVerifier(ORIGIN, bytes.fromhex(AGENT.public_key)).vkey
    assert _verify(bundle, "--bundle", "--key", vkey)[1]["verdict"] == "ok"  # the verifier key pins it too
    human = runner.invoke(app, ["verify", str(bundle)])
    assert human.exit_code == 0 and "the first 12 are the history the agent signed in 2 checkpoints" in human.output
    assert "no --key" in human.output  # an unpinned check says what it trusted


def test_bundle_of_another_agent_is_refused_when_the_key_is_pinned(agent):
    _, bundle = agent
    code, report = _verify(bundle, "--key", "ab" * 32)
    assert (code, report["verdict"]) == (1, "wrong_key")


def test_tail_cut_off_is_truncated_even_with_the_header_fixed(agent, tmp_path):
    _, bundle = agent
    lines = _lines(bundle)
    cut = _write(tmp_path / "cut.bundle", lines[:-4])  # the last two calls removed, the header left
    assert _verify(cut)[1]["verdict"] == "truncated"
    lines[0]["records"] = 8  # a careful editor fixes the header: the agent's checkpoint of 12 records remains
    code, report = _verify(_write(tmp_path / "doctored.bundle", lines[:-4]))
    assert (code, report["verdict"]) == (1, "truncated")
    assert "records 9–12 were cut off" in report["reason"]


def _rechain(records: list[dict], at: int, identity: Identity) -> None:
    """Rewrite record `at` and rebuild the chain after it, every record re-signed: what the key's holder can do."""
    records[at - 1]["args"] = {"to": "someone-else@example.com"}
    prev = records[at - 2]["hash"] if at > 1 else GENESIS
    for record in records[at - 1 :]:
        record["prev"] = prev
        record["hash"] = record_hash(record)
        record["sig"] = identity.sign(signing_message(bytes.fromhex(record["hash"]))).hex()
        prev = record["hash"]


def test_middle_record_rewritten_and_rechained_is_rewritten(agent, tmp_path):
    _, bundle = agent
    lines = _lines(bundle)
    records = [line["record"] for line in lines[3:]]
    _rechain(records, 4, AGENT)
    rewritten = _write(tmp_path / "rewritten.bundle", [*lines[:3], *({"type": "record", "record": r} for r in records)])
    code, report = _verify(rewritten)
    assert (code, report["verdict"]) == (1, "rewritten")  # the chain holds; the checkpoints signed earlier do not
    assert report["evidence"] and "not the history the log signed" in report["reason"]


def _resigned(records: list[dict], sizes: list[int], out: Path) -> Path:
    """A whole new bundle over `records`, with fresh checkpoints signed by the agent's key at `sizes`."""
    store = MemoryNodeStore()
    store.extend(bytes.fromhex(r["hash"]) for r in records)
    notes = [sign_checkpoint(Checkpoint(ORIGIN, size, root_at(store, size)), AGENT) for size in sizes]
    with out.open("wb") as handle:
        write_bundle(handle, [bytes.fromhex(r["hash"]) for r in records], AGENT.public_key, notes, records)
    return out


def test_a_history_rewritten_with_its_checkpoints_resigned_is_caught_by_a_checkpoint_held_elsewhere(agent, tmp_path):
    _, bundle = agent
    records = [line["record"] for line in _lines(bundle)[3:]]
    _rechain(records, 4, AGENT)
    forged = _resigned(records, [6, 12], tmp_path / "forged.bundle")
    assert _verify(forged)[1]["verdict"] == "ok"  # what a bundle alone cannot show: the key's holder signed it all
    code, report = _verify(forged, "--checkpoint", str(bundle))  # the auditor kept the earlier bundle
    assert (code, report["verdict"]) == (1, "forked") and len(report["evidence"]) == 2


def test_fork_two_branches_under_one_key_each_verify_alone_and_are_forked_together(tmp_path):
    home = tmp_path / "a" / ".hashed"
    _calls(home, 2)
    fork = tmp_path / "b" / ".hashed"
    shutil.copytree(home, fork)  # the same key, two histories from here on
    _calls(home, 2, to="auditor-one@example.com")
    _calls(fork, 3, to="auditor-two@example.com")
    one, two = _export(home, tmp_path / "one.bundle"), _export(fork, tmp_path / "two.bundle")
    assert _verify(one)[1]["verdict"] == "ok" and _verify(two)[1]["verdict"] == "ok"
    code, report = _verify(two, "--checkpoint", str(one))
    assert (code, report["verdict"]) == (1, "forked")
    held = tmp_path / "one.checkpoint"
    held.write_text(runner.invoke(app, ["proof", "checkpoint", str(home / "ledger.db")]).stdout)
    assert _verify(two, "--checkpoint", str(held))[1]["verdict"] == "forked"  # a single checkpoint note is enough
    ledger = runner.invoke(app, ["verify", "--json", str(fork / "ledger.db"), "--checkpoint", str(one)])
    assert ledger.exit_code == 1 and orjson.loads(ledger.stdout)["error"]["reason"].endswith("rewritten, or a fork")


def test_a_consistency_proof_that_does_not_link_two_checkpoints_is_inconsistent(agent, tmp_path):
    _, bundle = agent
    lines = _lines(bundle)
    lines[2]["proof"] = lines[2]["proof"][::-1]
    code, report = _verify(_write(tmp_path / "bad-proof.bundle", lines))
    assert (code, report["verdict"]) == (1, "inconsistent")


@pytest.fixture
def witnesses(tmp_path):
    """Two real witnesses on loopback that know the agent's log."""
    servers = []
    for i in range(2):
        store = WitnessStore(tmp_path / f"w{i}.db")
        store.add_log(NoteVerifier(ORIGIN, bytes.fromhex(AGENT.public_key)).vkey)
        server = WitnessServer(("127.0.0.1", 0), f"witness{i}.test", Identity.from_seed(bytes([50 + i]) * 32), store)
        server.start()
        servers.append(server)
    yield [Witness.parse(s.url, NoteVerifier(s.name, bytes.fromhex(s.identity.public_key), 0x04).vkey) for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()
        server.store.close()


def _gather(home: Path, witnesses: list[Witness]) -> None:
    """The agent's owner asks the witnesses to cosign each checkpoint as it is signed; the ledger keeps them."""
    options = [option for w in witnesses for option in ("--witness", f"{w.url} {w.key.vkey}")]
    result = runner.invoke(app, ["proof", "cosign", str(home / "ledger.db"), *options])
    assert result.exit_code == 0, result.output
    assert f"{len(witnesses)} of {len(witnesses)} witnesses cosigned" in result.output


@pytest.fixture
def cosigned(tmp_path, witnesses):
    """An agent whose owner had both checkpoints cosigned as they were signed (the witnesses saw the log grow)."""
    home = tmp_path / "cosigned" / ".hashed"
    _calls(home, 3)
    _gather(home, witnesses)
    _calls(home, 3)
    _gather(home, witnesses)
    return home


def test_witness_cosignatures_travel_in_the_bundle_and_a_dropped_one_is_caught(cosigned, witnesses, tmp_path):
    home = cosigned
    bundle = _export(home, tmp_path / "cosigned.bundle")
    keys = [option for w in witnesses for option in ("--witness", w.key.vkey)]
    code, report = _verify(bundle, "--key", AGENT.public_key, *keys)
    assert (code, report["verdict"], report["cosigned"]) == (0, "ok", ["witness0.test", "witness1.test"])
    lines = _lines(bundle)
    note = lines[2]["note"]
    lines[2]["note"] = "".join(line + "\n" for line in note.splitlines() if not line.startswith("— witness1.test"))
    dropped = _write(tmp_path / "dropped.bundle", lines)
    code, report = _verify(dropped, *keys)
    assert (code, report["verdict"]) == (1, "witnesses") and "1 of the 2 witness" in report["reason"]
    assert _verify(dropped, *keys, "--min-witnesses", "1")[1]["verdict"] == "ok"
    more = runner.invoke(app, ["verify", str(bundle), "--witness", witnesses[0].key.vkey, "--min-witnesses", "2"])
    assert more.exit_code == 2 and "--min-witnesses 2 but 1 --witness given" in more.output


def test_cosignatures_copied_onto_resigned_checkpoints_do_not_verify(cosigned, witnesses, tmp_path):
    home = cosigned
    lines = _lines(_export(home, tmp_path / "cosigned.bundle"))
    records = [line["record"] for line in lines[3:]]
    _rechain(records, 4, AGENT)
    forged = _lines(_resigned(records, [6, 12], tmp_path / "forged.bundle"))
    for line, original in zip(forged[1:3], lines[1:3], strict=True):
        cosignatures = [s for s in original["note"].splitlines() if s.startswith("— witness")]
        line["note"] += "".join(s + "\n" for s in cosignatures)
    keys = [option for w in witnesses for option in ("--witness", w.key.vkey)]
    code, report = _verify(_write(tmp_path / "copied.bundle", forged), *keys)
    assert (code, report["verdict"]) == (1, "bad_cosignature")
    code, report = _verify(tmp_path / "forged.bundle", *keys)  # and without them: too few
    assert (code, report["verdict"]) == (1, "witnesses")


@pytest.mark.parametrize("content", [b"\x00" * 4096, b"garbage\nnot json at all\n", b"", b'{"type": "header"}\n'])
def test_a_file_that_is_not_a_bundle_is_named_so(tmp_path, content):
    path = tmp_path / "junk.bundle"
    path.write_bytes(content)
    code, report = _verify(path, "--bundle")
    assert (code, report["verdict"]) == (1, "not_a_bundle")
    human = runner.invoke(app, ["verify", "--bundle", str(path)])
    assert human.exit_code == 1 and "not_a_bundle" in human.output and "hashed logs export --bundle" in human.output


def test_bundle_options_need_a_ledger_not_a_backend_agent(agent, tmp_path):
    home, _ = agent
    both = runner.invoke(app, ["logs", "export", "--bundle", str(tmp_path / "x"), "--agent", "a"])
    assert both.exit_code == 2
    missing = runner.invoke(app, ["logs", "export", "--bundle", str(tmp_path / "x"), "--ledger", str(tmp_path / "no")])
    assert missing.exit_code == 2 and not (tmp_path / "x").exists()
    witness = runner.invoke(app, ["verify", str(home / "ledger.db"), "--witness", "x+1+AA"])
    assert witness.exit_code == 2


def test_witnesses_that_saw_one_branch_refuse_the_other_and_its_bundle_lacks_their_cosignatures(witnesses, tmp_path):
    home = tmp_path / "a" / ".hashed"
    _calls(home, 2)
    _gather(home, witnesses)
    fork = tmp_path / "b" / ".hashed"
    shutil.copytree(home, fork)  # the same key, two histories from here on
    _calls(home, 2, to="auditor-one@example.com")
    _gather(home, witnesses)
    _calls(fork, 3, to="auditor-two@example.com")
    options = [option for w in witnesses for option in ("--witness", f"{w.url} {w.key.vkey}")]
    refused = runner.invoke(app, ["proof", "cosign", str(fork / "ledger.db"), *options])
    assert refused.exit_code == 1 and "split view" in refused.output
    keys = [option for w in witnesses for option in ("--witness", w.key.vkey)]
    assert _verify(_export(home, tmp_path / "one.bundle"), *keys)[1]["verdict"] == "ok"
    code, report = _verify(_export(fork, tmp_path / "two.bundle"), *keys)
    assert (code, report["verdict"]) == (1, "witnesses")
