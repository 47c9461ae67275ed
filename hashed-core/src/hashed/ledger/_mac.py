"""Authenticating what waits for its signature, so that the agent never signs what it did not write itself.

A record is signed off the caller's path: a journal frame (durable mode) is chained and signed by the writer
thread or, after a crash, by the next start; a row committed before its signature (immediate mode, approvals,
the writer's last group) is signed moments later or, after a crash, by the next start. Whoever can write the
agent's files could add a frame or an unsigned row in between, and the agent would sign it. So each frame and
each unsigned row carries a MAC under a key derived one way from the agent's secret seed (keyed BLAKE2b-128,
under a microsecond), and nothing is signed or committed unless its MAC holds. A forgery stays unsigned, and
`hashed verify` names it.

Example:
    >>> macs = Macs(bytes(32))
    >>> line = macs.seal_frame(b'["tool_call"]')
    >>> macs.open_frame(line[:-1])  # a journal's reader takes the newline off
    b'["tool_call"]'
    >>> macs.open_frame(line[:-2] + b"}") is None
    True
    >>> macs.row_ok(bytes(32), macs.row(bytes(32))), macs.row_ok(bytes(32), None)
    (True, False)
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["FRAME_MAC", "Macs"]

FRAME_MAC = 32  # hex characters of a frame's MAC, before its JSON
_KEY_PERSON = b"hashed-mac-key1"
_FRAME_PERSON = b"hashed-frame1"
_ROW_PERSON = b"hashed-row1"


class Macs:
    """An agent's MACs for journal frames and unsigned rows (keyed hashers are copied per use: a third faster)."""

    __slots__ = ("_frame", "_previous", "_row")

    def __init__(self, seed: bytes, *, previous: Macs | None = None) -> None:
        """`previous`: the MACs of the key a rotation just replaced, whose frames may still wait to be read."""
        key = hashlib.blake2b(seed, digest_size=32, person=_KEY_PERSON).digest()  # never stored
        self._frame = hashlib.blake2b(key=key, digest_size=16, person=_FRAME_PERSON)
        self._row = hashlib.blake2b(key=key, digest_size=16, person=_ROW_PERSON)
        self._previous = None if previous is None else previous._frame  # one rotation back, frames only

    def seal_frame(self, payload: bytes) -> bytes:
        """A journal frame: the payload's MAC (hex), the payload, a newline."""
        mac = self._frame.copy()
        mac.update(payload)
        return mac.hexdigest().encode() + payload + b"\n"

    def open_frame(self, frame: bytes) -> bytes | None:
        """The payload of a frame (newline taken off) whose MAC holds; None: this agent did not write it."""
        payload = frame[FRAME_MAC:]
        for keyed in (self._frame, self._previous):
            if keyed is None:
                break
            mac = keyed.copy()
            mac.update(payload)
            if hmac.compare_digest(mac.hexdigest().encode(), frame[:FRAME_MAC]):
                return payload
        return None

    def row(self, digest: bytes) -> bytes:
        """The MAC an unsigned row carries: over its record hash, which covers every byte of the record."""
        mac = self._row.copy()
        mac.update(digest)
        return mac.digest()

    def row_ok(self, digest: bytes, mac: bytes | None) -> bool:
        """Whether an unsigned row was committed by this agent."""
        return mac is not None and hmac.compare_digest(self.row(digest), bytes(mac))
