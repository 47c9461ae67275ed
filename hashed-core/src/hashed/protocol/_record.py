r"""How one record is hashed and signed (docs/protocol.md is the normative text).

    body  = every field of the record except `hash` and `sig`
    bytes = RFC 8785 canonical JSON of body (UTF-8)
    hash  = SHA-256(0x00 || bytes)                      (an RFC 6962 leaf hash)
    sig   = Ed25519(key, "hashed.record.v1\\n" || hash)   (domain-separated, RFC 8032)

`hash` and `sig` travel as lowercase hex, as do public keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.signing

from hashed.protocol._canonical import canonical_object_bytes

__all__ = [
    "GENESIS",
    "PROTOCOL_VERSION",
    "ROTATION_CONTEXT",
    "SIGNING_CONTEXT",
    "body_of",
    "leaf_hash",
    "record_hash",
    "rotation_message",
    "signing_message",
    "verify_signature",
]

PROTOCOL_VERSION = 1
GENESIS = "0" * 64
SIGNING_CONTEXT = b"hashed.record.v1\n"
ROTATION_CONTEXT = b"hashed.rotate.v1\n"
_LEAF_PREFIX = b"\x00"
_NOT_SIGNED = frozenset({"hash", "sig"})


def leaf_hash(body_bytes: bytes) -> bytes:
    """SHA-256 of the RFC 6962 leaf: a zero byte, then the canonical body."""
    return hashlib.sha256(_LEAF_PREFIX + body_bytes).digest()


def signing_message(hash_bytes: bytes) -> bytes:
    """What the agent key signs for a record whose hash is `hash_bytes`."""
    return SIGNING_CONTEXT + hash_bytes


def rotation_message(old_key: str, new_key: str) -> bytes:
    """What the new key signs in a key_rotation record, proving its holder agreed to the rotation."""
    return ROTATION_CONTEXT + bytes.fromhex(old_key) + bytes.fromhex(new_key)


def body_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The signed part of an exported record: all of it but `hash` and `sig`."""
    return {k: v for k, v in record.items() if k != "hash" and k != "sig"}


def record_hash(record: Mapping[str, Any]) -> str:
    """The hex hash a record (export form or bare body) must carry.

    Example:
        >>> record_hash({"seq": 1, "kind": "decision"}) == record_hash({"kind": "decision", "seq": 1, "hash": "x"})
        True
    """
    return leaf_hash(canonical_object_bytes(record, _NOT_SIGNED)).hex()


def verify_signature(public_key: str, hash_hex: str, sig_hex: str) -> bool:
    """Whether `sig_hex` is `public_key`'s signature of the record hash `hash_hex`."""
    try:
        key = nacl.signing.VerifyKey(bytes.fromhex(public_key))
        key.verify(signing_message(bytes.fromhex(hash_hex)), bytes.fromhex(sig_hex))
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True
