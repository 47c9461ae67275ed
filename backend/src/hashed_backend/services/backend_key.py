"""The backend's own Ed25519 key: made on first start, kept in the database (encrypted under a secret if set).

Every replica loads the same key, so an approval answer verifies whichever replica signed it. Ed25519 is
deterministic: two replicas signing the same answer produce the same signature.
"""

from __future__ import annotations

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from hashed_backend.credentials import now_ns
from hashed_backend.db.models import BackendKey
from hashed_backend.db.session import Database

__all__ = ["BackendKeyError", "load_or_create"]

_ROW_ID = 1


class BackendKeyError(RuntimeError):
    """The stored key cannot be used (encrypted, but no or the wrong secret key is configured)."""


def _box(secret: str, salt: bytes) -> nacl.secret.SecretBox:
    kdf = nacl.pwhash.argon2id
    key = kdf.kdf(
        nacl.secret.SecretBox.KEY_SIZE, secret.encode(), salt, kdf.OPSLIMIT_INTERACTIVE, kdf.MEMLIMIT_INTERACTIVE
    )
    return nacl.secret.SecretBox(key)


def _seal(seed: bytes, secret: str | None) -> tuple[str, bool]:
    if secret is None:
        return seed.hex(), False
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    return f"{salt.hex()}:{bytes(_box(secret, salt).encrypt(seed)).hex()}", True


def _open(stored: str, encrypted: bool, secret: str | None) -> bytes:
    if not encrypted:
        return bytes.fromhex(stored)
    if secret is None:
        raise BackendKeyError("the backend key is stored encrypted: set HASHED_BACKEND_SECRET_KEY")
    salt, _, box = stored.partition(":")
    try:
        return _box(secret, bytes.fromhex(salt)).decrypt(bytes.fromhex(box))
    except nacl.exceptions.CryptoError:
        raise BackendKeyError("HASHED_BACKEND_SECRET_KEY does not open the stored backend key") from None


async def load_or_create(db: Database, secret: str | None) -> nacl.signing.SigningKey:
    """The backend's signing key, creating it if this is the first start (safe when replicas start together)."""
    async with db.read() as conn:
        row = (await conn.execute(select(BackendKey).where(BackendKey.id == _ROW_ID))).first()
    if row is None:
        key = nacl.signing.SigningKey.generate()
        stored, encrypted = _seal(bytes(key), secret)
        try:
            async with db.write() as conn:
                await conn.execute(
                    insert(BackendKey).values(
                        id=_ROW_ID,
                        public_key=key.verify_key.encode().hex(),
                        seed=stored,
                        encrypted=encrypted,
                        created_ns=now_ns(),
                    )
                )
        except IntegrityError:
            pass  # another replica made it first: use theirs
        async with db.read() as conn:
            row = (await conn.execute(select(BackendKey).where(BackendKey.id == _ROW_ID))).one()
    return nacl.signing.SigningKey(_open(row.seed, row.encrypted, secret))
