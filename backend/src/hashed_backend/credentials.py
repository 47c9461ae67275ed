"""Secrets the backend hands out (API keys, session tokens) and the hashes it keeps of them.

API keys and session tokens are 256 random bits, so a plain SHA-256 is enough to store them: nobody can
guess a preimage, and a fast hash lets every request look its key up by an indexed equality. A slow,
salted hash (argon2) only helps low-entropy secrets; it is what people's passwords get.

Example:
    >>> key = new_secret("hashed_agent")
    >>> key.startswith("hashed_agent_") and len(secret_hash(key)) == 64
    True
"""

from __future__ import annotations

import datetime
import hashlib
import os
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "iso", "new_id", "new_secret", "now_ns", "secret_hash", "verify_password"]

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
_DUMMY = _hasher.hash("not a password: equalises the time of a log-in with an unknown e-mail")


def new_secret(prefix: str) -> str:
    """A new secret: `prefix`, an underscore, then 43 URL-safe base64 characters (256 bits)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def secret_hash(secret: str) -> str:
    """The SHA-256 (hex) under which a secret is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_id(prefix: str) -> str:
    """A new random id such as `agt_3f9a…` (96 bits)."""
    return f"{prefix}_{os.urandom(12).hex()}"


def now_ns() -> int:
    """Nanoseconds since the epoch."""
    return time.time_ns()


def iso(ns: int | None) -> str | None:
    """RFC 3339 UTC time of a nanosecond timestamp (microsecond precision)."""
    if ns is None:
        return None
    moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def hash_password(password: str) -> str:
    """argon2id hash of a password (slow on purpose: run it off the event loop)."""
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; with no stored hash, spends the same time and says no."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
