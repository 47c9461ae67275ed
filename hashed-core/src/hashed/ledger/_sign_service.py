"""Signing batches of records in a helper process, so that signing never competes with the caller for the GIL.

A thread that signs in this process must take the GIL back after every signature (PyNaCl releases it while
libsodium signs), and each hand-over wakes threads through the kernel: measured here, a signing thread adds
about 20 µs to a durable guarded call at the median and pushes its p99 from ≈ 170 µs to ≈ 370 µs. A helper
process signs a whole batch per round trip instead (one write, one read), on the machine's other core.

One helper serves every `Ledger` of the process (each batch names its key). It starts on first use, in the
background; until it answers, and whenever it cannot be reached, batches are signed in this process instead,
so signing never stops.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence

from hashed.identity import Identity
from hashed.protocol._record import signing_message

__all__ = ["SigningPipeline", "sign_many"]

_log = logging.getLogger("hashed.ledger")
_MIN_BATCH = 8  # smaller batches are cheaper to sign here than to send


class _Helper:
    """The helper process and the lock that keeps one request in flight at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.starting = False
        self.failed = False

    def start_in_background(self) -> None:
        with self.lock:
            if self.starting or self.process is not None or self.failed:
                return
            self.starting = True
        threading.Thread(target=self._start, name="hashed-sign-helper-start", daemon=True).start()

    def _start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "HASHED_INSTRUMENT"}  # the helper guards nothing
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "hashed.ledger._sign_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                close_fds=True,
            )
        except OSError as exc:
            _log.info("hashed: no signing helper process (%s); signing in this process", exc)
            with self.lock:
                self.failed, self.starting = True, False
            return
        with self.lock:
            self.process, self.starting = process, False

    def send(self, seed: bytes, digests: Sequence[bytes]) -> bool:
        """Send one request (the caller holds `lock`); False when the helper is not there (yet, or any more)."""
        process = self.process
        if process is None or process.stdin is None:
            return False
        try:
            payload = seed + b"".join(digests)
            process.stdin.write(struct.pack(">I", len(payload)) + payload)
            process.stdin.flush()
        except (OSError, ValueError):
            self._retire(process)
            return False
        return True

    def receive(self, count: int) -> list[bytes] | None:
        """The answer to the oldest request still unanswered (the caller holds `lock`), or None if it broke."""
        process = self.process
        body = b""
        if process is not None and process.stdout is not None:
            try:
                header = process.stdout.read(4)
                size = struct.unpack(">I", header)[0] if len(header) == 4 else -1
                body = process.stdout.read(size) if size == 64 * count else b""
            except (OSError, ValueError, struct.error):
                body = b""
        if len(body) != 64 * count:
            if process is not None:
                self._retire(process)
            return None
        return [body[i : i + 64] for i in range(0, len(body), 64)]

    def sign(self, seed: bytes, digests: Sequence[bytes]) -> list[bytes] | None:
        """Signatures from the helper in one round trip, or None when it is not there (yet, or any more)."""
        with self.lock:
            if not self.send(seed, digests):
                return None
            return self.receive(len(digests))

    def _retire(self, process: subprocess.Popen[bytes]) -> None:
        _log.warning("hashed: the signing helper stopped answering; signing in this process from now on")
        self.process, self.failed = None, True
        with contextlib.suppress(OSError):
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()

    def forget(self) -> None:
        """In a forked child: the parent's helper is not ours to use (nor its lock's state)."""
        self.lock = threading.Lock()
        self.process, self.starting, self.failed = None, False, False

    def stop(self) -> None:
        """At exit: close the helper's input (it ends), and wait for it briefly."""
        process = self.process
        self.process = None
        if process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


_helper = _Helper()
os.register_at_fork(after_in_child=_helper.forget)
atexit.register(_helper.stop)


def sign_many(identity: Identity, digests: Sequence[bytes]) -> list[bytes]:
    """The Ed25519 signatures of records with these hashes, in order (helper process when it can)."""
    if len(digests) >= _MIN_BATCH:
        _helper.start_in_background()
        signatures = _helper.sign(identity.seed, digests)
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
        if len(digests) >= _MIN_BATCH and _helper.send(self._identity.seed, digests):
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
