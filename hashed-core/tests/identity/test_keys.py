from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from hashed import Hashed, IdentityError
from hashed._rotation import next_key_path, resolve_key_file
from hashed.identity import Identity, load_identity, read_public_key, save_identity
from hashed.ledger import record_hash, signing_message, verify_records
from hashed.protocol._record import body_of
from hashed.testing import ALLOW_ALL


def test_key_file_is_encrypted_and_private(tmp_path):
    identity = Identity.generate()
    path = tmp_path / "agent.key"
    save_identity(identity, path, "correct horse")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["kdf"] == "argon2id" and document["public_key"] == identity.public_key
    assert identity.seed.hex() not in path.read_text()
    assert load_identity(path, "correct horse").public_key == identity.public_key
    assert read_public_key(path) == identity.public_key


def test_a_wrong_passphrase_is_a_clear_error(tmp_path):
    path = tmp_path / "agent.key"
    save_identity(Identity.generate(), path, "right")
    with pytest.raises(IdentityError, match=r"wrong passphrase for .*agent.key \(check HASHED_KEY_PASSPHRASE\)"):
        load_identity(path, "wrong")
    with pytest.raises(IdentityError, match="set HASHED_KEY_PASSPHRASE"):
        load_identity(path, None)


def test_a_key_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "agent.key"
    save_identity(Identity.generate(), path, "pw")
    os.chmod(path, 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        load_identity(path, "pw")


def test_missing_and_damaged_key_files_say_what_to_do(tmp_path):
    with pytest.raises(IdentityError, match="hashed init"):
        load_identity(tmp_path / "none.key", "pw")
    (tmp_path / "bad.key").write_text("{}")
    with pytest.raises(IdentityError, match="not a Hashed agent key"):
        load_identity(tmp_path / "bad.key", "pw")


def _project(tmp_path, monkeypatch):
    home = tmp_path / ".hashed"
    home.mkdir()
    (home / "policy.yaml").write_text(ALLOW_ALL)
    save_identity(Identity.generate(), home / "agent.key", "pw")
    monkeypatch.setenv("HASHED_KEY_PASSPHRASE", "pw")
    return home


def test_rotation_is_signed_by_the_old_key_and_verifies(tmp_path, monkeypatch):
    home = _project(tmp_path, monkeypatch)
    with Hashed(home, disable_plugin_autoload=True) as hashed:
        hashed.guard("ping")(lambda: "pong")()
        old, old_identity = hashed.public_key, hashed.identity
        new = hashed.rotate_key()
        hashed.guard("ping")(lambda: "pong")()
        report = hashed.verify()
        assert report.ok, report.error
        assert report.keys == [old, new.public_key]
        records = [r.to_json() for r in hashed.ledger.records()]
    assert [r["kind"] for r in records] == ["decision", "outcome", "key_rotation", "decision", "outcome"]
    assert records[2]["key"] == old and records[3]["key"] == new.public_key
    # A rotation record correctly hashed and signed by the old key, but whose proof the new key never made:
    forged = body_of(dict(records[2], proof="11" * 64))
    forged["hash"] = record_hash(forged)
    forged["sig"] = old_identity.sign(signing_message(bytes.fromhex(forged["hash"]))).hex()
    report = verify_records([*records[:2], forged])
    assert (report.error.sequence, report.error.reason) == (3, "key_rotation proof is not the new key's signature")
    with Hashed(home, disable_plugin_autoload=True) as reopened:  # the key file now holds the new key
        assert reopened.public_key == new.public_key


def test_a_rotation_interrupted_before_its_record_is_undone(tmp_path, monkeypatch):
    home = _project(tmp_path, monkeypatch)
    with Hashed(home, disable_plugin_autoload=True) as hashed:
        hashed.guard("ping")(lambda: "pong")()
        old = hashed.public_key
    save_identity(Identity.generate(), next_key_path(home / "agent.key"), "pw")  # crash right after step 1
    resolve_key_file(home / "agent.key", home / "ledger.db")
    assert not next_key_path(home / "agent.key").exists()
    with Hashed(home, disable_plugin_autoload=True) as hashed:
        assert hashed.public_key == old


@pytest.mark.parametrize("durability", ["immediate", "durable", "background"])
def test_rotations_while_other_threads_call_keep_every_record_and_every_signature(tmp_path, monkeypatch, durability):
    # Before: in immediate mode a record committed just before a rotation was signed later by the new key (and
    # a record could land after the rotation record under the old one): verify failed in 5 runs of 5.
    home = _project(tmp_path, monkeypatch)
    calls = [0, 0, 0, 0]
    with Hashed(home, disable_plugin_autoload=True, durability=durability) as hashed:
        ping = hashed.guard("ping")(lambda: "pong")
        stop = threading.Event()

        def work(slot: int) -> None:
            while not stop.is_set() and calls[slot] < 1500:  # bounded: durable mode takes calls as fast as they come
                ping()
                calls[slot] += 1

        workers = [threading.Thread(target=work, args=(slot,)) for slot in range(3)]
        for worker in workers:
            worker.start()
        keys = [hashed.public_key]
        for _ in range(3):
            for _ in range(50):
                ping()
                calls[3] += 1
            keys.append(hashed.rotate_key().public_key)
        stop.set()
        for worker in workers:
            worker.join()
        report = hashed.verify()
        assert report.ok, report.error
        assert report.keys == keys
        assert report.count == 2 * sum(calls) + 3  # a decision and an outcome per call, and the rotations
