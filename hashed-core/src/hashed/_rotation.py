"""Key rotation, a step of the core: the old key signs a `key_rotation` record naming the new one, which signs a proof.

Identity keeps the keys, the ledger appends the record; this module sequences the two (so that identity never
imports the ledger).

Crash safety: the new key is written to `<key>.next` first, the rotation record is committed, and only then is
`<key>.next` renamed over the key file. If the process dies in between, `resolve_key_file` finishes the job
(or discards the unused new key) on the next start, by looking at which key the ledger expects.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hashed.identity import Identity, read_public_key, save_identity
from hashed.ledger import Ledger
from hashed.ledger._queries import expected_key
from hashed.protocol import rotation_message

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
    proof = new.sign(rotation_message(old.public_key, new.public_key)).hex()
    ledger.rotate(new, agent, {"new_key": new.public_key, "proof": proof})  # no record between, with the wrong key
    os.replace(pending, key_path)
    return new


def resolve_key_file(key_path: Path, ledger_path: Path) -> None:
    """Finish or undo a rotation that a crash interrupted (no-op when none is pending)."""
    pending = next_key_path(key_path)
    if not pending.exists():
        return
    expected = expected_key(ledger_path)
    if expected is not None and expected == read_public_key(pending):
        os.replace(pending, key_path)
    else:
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()
