"""Authenticating what waits for its signature, so that the agent never signs what it did not write itself.

A record is signed off the caller's path: a journal frame (durable mode) is chained and signed by the writer
thread or, after a crash, by the next start; a row committed by the caller (immediate mode, approvals) is signed
by the signer thread or, after a crash, by the next start. Whoever can write the agent's files could add a frame
or an unsigned row in between, and the agent would sign it. So each frame and each unsigned row carries a MAC
under a key derived from the agent's secret seed (keyed BLAKE2b, about a microsecond), and nothing is signed or
committed unless its MAC holds. A forgery stays unsigned, and `hashed verify` names it.

Examples:
    >>> key = mac_key(bytes(32))
    >>> line = seal_frame(key, b'["tool_call"]')
    >>> open_frame(key, line[:-1])  # a journal's reader takes the newline off
    b'["tool_call"]'
    >>> open_frame(key, line[:-2] + b"}") is None
    True
    >>> row_ok(key, bytes(32), row_mac(key, bytes(32)))
    True
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["FRAME_MAC", "mac_key", "open_frame", "row_mac", "row_ok", "seal_frame"]

FRAME_MAC = 32  # hex characters of a frame's MAC, before its JSON
_KEY_PERSON = b"hashed-mac-key1"
_FRAME_PERSON = b"hashed-frame1"
_ROW_PERSON = b"hashed-row1"


def mac_key(seed: bytes) -> bytes:
    """The MAC key of an agent: derived one way from its 32-byte signing seed, never stored."""
    return hashlib.blake2b(seed, digest_size=32, person=_KEY_PERSON).digest()


def seal_frame(key: bytes, payload: bytes) -> bytes:
    """A journal frame: the payload's MAC (hex), the payload, a newline."""
    mac = hashlib.blake2b(payload, key=key, digest_size=16, person=_FRAME_PERSON).hexdigest().encode()
    return b"".join((mac, payload, b"\n"))


def open_frame(key: bytes, frame: bytes) -> bytes | None:
    """The payload of a frame (newline taken off) whose MAC holds under `key`; None: this agent did not write it."""
    payload = frame[FRAME_MAC:]
    expected = hashlib.blake2b(payload, key=key, digest_size=16, person=_FRAME_PERSON).hexdigest().encode()
    return payload if hmac.compare_digest(expected, frame[:FRAME_MAC]) else None


def row_mac(key: bytes, digest: bytes) -> bytes:
    """The MAC an unsigned row carries: over its record hash, which covers every byte of the record."""
    return hashlib.blake2b(digest, key=key, digest_size=16, person=_ROW_PERSON).digest()


def row_ok(key: bytes, digest: bytes, mac: bytes | None) -> bool:
    """Whether an unsigned row was committed by the agent holding `key`."""
    return mac is not None and hmac.compare_digest(row_mac(key, digest), bytes(mac))
