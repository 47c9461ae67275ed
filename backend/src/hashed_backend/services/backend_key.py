"""The backend's own Ed25519 key: made on first start, kept in the database, always encrypted at rest.

The encryption key is, in order: `HASHED_BACKEND_SECRET_KEY` (the operator's; every replica needs the same),
else a key file `backend-secret.key` that the backend creates with mode 0600 in its data folder on first start.
At every start the stored key is brought under the key in force: a key stored in clear (before issue #15), or
under the key file when the operator has since set a secret, or under `HASHED_BACKEND_OLD_SECRET_KEY` while the
operator rotates the secret, is opened and encrypted again (argon2id + secretbox, a new salt each time).

Every replica loads the same key, so an approval answer verifies whichever replica signed it. Ed25519 is
deterministic: two replicas signing the same answer produce the same signature.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils
from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from hashed_backend.credentials import now_ns
from hashed_backend.db.models import BackendKey
from hashed_backend.db.session import Database

__all__ = ["KEY_FILE", "BackendKeyError", "check_can_open", "load_or_create", "local_secret"]

KEY_FILE = "backend-secret.key"
_ROW_ID = 1
_log = logging.getLogger("hashed_backend")


class BackendKeyError(RuntimeError):
    """The stored key cannot be used (no configured secret opens it); the message says what to set."""


def local_secret(data_dir: Path) -> str:
    """The secret in `data_dir/backend-secret.key`, created (256 random bits, mode 0600) if it does not exist."""
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


def _box(secret: str, salt: bytes) -> nacl.secret.SecretBox:
    kdf = nacl.pwhash.argon2id
    key = kdf.kdf(
        nacl.secret.SecretBox.KEY_SIZE, secret.encode(), salt, kdf.OPSLIMIT_INTERACTIVE, kdf.MEMLIMIT_INTERACTIVE
    )
    return nacl.secret.SecretBox(key)


def _seal(seed: bytes, secret: str) -> str:
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    return f"{salt.hex()}:{bytes(_box(secret, salt).encrypt(seed)).hex()}"


def _open(stored: str, secret: str) -> bytes | None:
    salt, _, box = stored.partition(":")
    try:
        return bytes(_box(secret, bytes.fromhex(salt)).decrypt(bytes.fromhex(box)))
    except (nacl.exceptions.CryptoError, ValueError):
        return None


async def load_or_create(
    db: Database, secret: str | None, *, data_dir: Path, old_secret: str | None = None
) -> nacl.signing.SigningKey:
    """The backend's signing key, creating it on the first start (safe when replicas start together).

    Args:
        db: the database.
        secret: the operator's secret (`HASHED_BACKEND_SECRET_KEY`), or None to use the key file in `data_dir`.
        data_dir: where the key file is (created only when it is the key in force).
        old_secret: the operator's previous secret, while rotating it.
    """
    current = secret if secret is not None else local_secret(data_dir)
    async with db.read() as conn:
        row = (await conn.execute(select(BackendKey).where(BackendKey.id == _ROW_ID))).first()
    if row is None:
        key = nacl.signing.SigningKey.generate()
        try:
            async with db.write() as conn:
                await conn.execute(
                    insert(BackendKey).values(
                        id=_ROW_ID,
                        public_key=key.verify_key.encode().hex(),
                        seed=_seal(bytes(key), current),
                        encrypted=True,
                        created_ns=now_ns(),
                    )
                )
        except IntegrityError:
            pass  # another replica made it first: use theirs
        async with db.read() as conn:
            row = (await conn.execute(select(BackendKey).where(BackendKey.id == _ROW_ID))).one()
    if not row.encrypted:
        seed = bytes.fromhex(row.seed)
    else:
        opened = _open(row.seed, current)
        if opened is not None:
            return nacl.signing.SigningKey(opened)
        seed = _previous(row.seed, secret, old_secret, data_dir)
    await _reseal(db, row.seed, seed, current)
    return nacl.signing.SigningKey(seed)


def _previous(stored: str, secret: str | None, old_secret: str | None, data_dir: Path) -> bytes:
    """Open a key stored under a key no longer in force: the old secret, or the key file before a secret was set."""
    candidates = [old_secret] if old_secret is not None else []
    if secret is not None and (data_dir / KEY_FILE).exists():
        candidates.append((data_dir / KEY_FILE).read_text().strip())
    for candidate in candidates:
        seed = _open(stored, candidate)
        if seed is not None:
            return seed
    if secret is None:
        raise BackendKeyError(
            f"the backend key in the database is encrypted under a secret, not under {data_dir / KEY_FILE}: "
            "set HASHED_BACKEND_SECRET_KEY (the same on every replica)"
        )
    raise BackendKeyError(
        "HASHED_BACKEND_SECRET_KEY does not open the stored backend key: set the secret it was stored under, "
        "or set that one as HASHED_BACKEND_OLD_SECRET_KEY to re-encrypt the key under the new one"
    )


async def _reseal(db: Database, stored: str, seed: bytes, secret: str) -> None:
    """Store the key encrypted under `secret`, unless another replica changed the row meanwhile."""
    async with db.write() as conn:
        await conn.execute(
            update(BackendKey)
            .where(BackendKey.id == _ROW_ID, BackendKey.seed == stored)
            .values(seed=_seal(seed, secret), encrypted=True)
        )
    _log.info("the backend key is now stored encrypted under the configured key")


async def check_can_open(db: Database, secret: str | None, *, data_dir: Path, old_secret: str | None = None) -> None:
    """Raise `BackendKeyError` if a stored key exists that none of the configured keys opens (changes nothing)."""
    try:
        async with db.read() as conn:
            row = (await conn.execute(select(BackendKey).where(BackendKey.id == _ROW_ID))).first()
    except DBAPIError:
        return  # no table yet: the first start makes the key
    if row is None or not row.encrypted:
        return
    key_file = data_dir / KEY_FILE
    current = secret if secret is not None else (key_file.read_text().strip() if key_file.exists() else None)
    if current is not None and _open(row.seed, current) is not None:
        return
    _previous(row.seed, secret, old_secret, data_dir)
