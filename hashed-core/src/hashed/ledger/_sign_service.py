"""Signing batches of records in a helper process, so that signing never competes with the caller for the GIL.

A thread that signs in this process must take the GIL back after every signature (PyNaCl releases it while
libsodium signs), and each hand-over wakes threads through the kernel: measured here, a signing thread adds
about 20 µs to a durable guarded call at the median and pushes its p99 from ≈ 170 µs to ≈ 370 µs. A helper
process signs a whole batch per round trip instead (one write, one read), on the machine's other core.

One helper serves every `Ledger` of the process (each key is handed to it once; each batch names its key by
number). It starts on first use, in the background; until it answers, and whenever it cannot be reached,
batches are signed in this process instead, so signing never stops. It runs isolated (`python -I` on the
worker file's path) so that nothing in the current directory can stand in for it (issue #14, item 10).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Sequence

from hashed.identity import Identity
from hashed.ledger._sign_helper import SignHelper
from hashed.protocol._record import signing_message

__all__ = ["SigningPipeline", "sign_many"]

_MIN_BATCH = 8  # smaller batches are cheaper to sign here than to send


_helper = SignHelper()  # the process's one helper (`_sign_helper.py`), shared by every Ledger
os.register_at_fork(after_in_child=_helper.forget)
atexit.register(_helper.stop)


def sign_many(identity: Identity, digests: Sequence[bytes]) -> list[bytes]:
    """The Ed25519 signatures of records with these hashes, in order (helper process when it can)."""
    if len(digests) >= _MIN_BATCH:
        _helper.start_in_background()
        signatures = _helper.sign(identity, digests)
        if signatures is not None:
            return signatures
    return [identity.sign(signing_message(digest)) for digest in digests]


class SigningPipeline:
    """Signatures for a long run of records, computed by the helper while the caller prepares the next ones.

    `add` sends a chunk and returns at once (at most two chunks are in flight, so neither side's pipe fills);
    `results` returns every signature, in order. Chunks the helper could not sign are signed here. Holds the
    helper for its whole life: use it in a `with` block.
    """

    _IN_FLIGHT = 2

    def __init__(self, identity: Identity) -> None:
        self._identity = identity
        self._done: list[bytes] = []
        self._waiting: list[list[bytes]] = []  # chunks sent, answers not read yet (oldest first)
        _helper.start_in_background()
        self._locked = _helper.lock.acquire()

    def _local(self, digests: list[bytes]) -> list[bytes]:
        return [self._identity.sign(signing_message(digest)) for digest in digests]

    def _collect_oldest(self) -> None:
        digests = self._waiting.pop(0)
        self._done.extend(_helper.receive(len(digests)) or self._local(digests))

    def add(self, digests: list[bytes]) -> None:
        """Queue a chunk of record hashes for signing."""
        if len(digests) >= _MIN_BATCH and _helper.send(self._identity, digests):
            self._waiting.append(digests)
            if len(self._waiting) > self._IN_FLIGHT:
                self._collect_oldest()
        else:
            while self._waiting:  # keep the order: answers for earlier chunks first
                self._collect_oldest()
            self._done.extend(self._local(digests))

    def results(self) -> list[bytes]:
        """Every signature, in the order the hashes were added."""
        while self._waiting:
            self._collect_oldest()
        out, self._done = self._done, []
        return out

    def __enter__(self) -> SigningPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.results()  # after an error between add and results: drain the helper's answers, keep it usable
        if self._locked:
            _helper.lock.release()
            self._locked = False
