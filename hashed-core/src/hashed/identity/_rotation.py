"""Key rotation: the old key signs a `key_rotation` record naming the new key, and the new key signs a proof.

Crash safety: the new key is written to `<key>.next` first, the rotation record is committed, and only then is
`<key>.next` renamed over the key file. If the process dies in between, `resolve_key_file` finishes the job
(or discards the unused new key) on the next start, by looking at which key the ledger expects.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import orjson

from hashed.identity._keys import Identity, read_public_key, save_identity
from hashed.ledger._store import Ledger
from hashed.protocol._record import rotation_message

__all__ = ["next_key_path", "resolve_key_file", "rotate"]


def next_key_path(key_path: Path) -> Path:
    """Where a rotation keeps the new key until its record is committed."""
    return key_path.with_name(key_path.name + ".next")


def rotate(ledger: Ledger, agent: str, key_path: Path, passphrase: str) -> Identity:
    """Rotate the agent key of `ledger`; returns the new identity (already in use by the ledger)."""
    old = ledger.identity
    new = Identity.generate()
    pending = next_key_path(key_path)
    save_identity(new, pending, passphrase)
    ledger.flush()
    proof = new.sign(rotation_message(old.public_key, new.public_key)).hex()
    ledger.transact(
        lambda txn: txn.append("key_rotation", agent, {"new_key": new.public_key, "proof": proof}), sign_now=True
    )
    ledger.identity = new
    os.replace(pending, key_path)
    return new


def resolve_key_file(key_path: Path, ledger_path: Path) -> None:
    """Finish or undo a rotation that a crash interrupted (no-op when none is pending)."""
    pending = next_key_path(key_path)
    if not pending.exists():
        return
    expected = _expected_key(ledger_path)
    if expected is not None and expected == read_public_key(pending):
        os.replace(pending, key_path)
    else:
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()


def _expected_key(ledger_path: Path) -> str | None:
    if not ledger_path.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"{ledger_path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT key, kind, body FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    key, kind, body = row
    return str(orjson.loads(body)["new_key"]) if kind == "key_rotation" else str(key)
