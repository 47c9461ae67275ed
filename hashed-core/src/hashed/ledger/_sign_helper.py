"""The signing helper process: starting it, handing it keys, and one request in flight at a time.

`_sign_service.py` says why signing runs in another process and holds the one helper of this process; this module is
the helper's side of the pipe (frames, deadlines, replacing a helper that died or hung).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from hashed.identity import Identity
from hashed.protocol._record import SIGNING_CONTEXT

__all__ = ["SignHelper"]

_log = logging.getLogger("hashed.ledger")
_WORKER = Path(__file__).with_name("_sign_worker.py")  # run by path: never found through the current directory
_HEADER = struct.Struct(">cI")
_TIMEOUT = 3.0  # seconds a helper may take to take a request or answer it (plus _PER_HASH each) before it is replaced
_PER_HASH = 0.001
_MAX_FAILURES = 3  # helpers that died or hung in a row; after that this process signs for itself


def _frame(kind: bytes, body: bytes) -> bytes:
    return _HEADER.pack(kind, len(body)) + body


def _ready(fd: int, event: int, deadline: float) -> bool:
    """Whether `fd` can be read or written (or has hung up) before `deadline` (poll: no FD_SETSIZE limit)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    poller = select.poll()
    poller.register(fd, event)
    return bool(poller.poll(remaining * 1000))


def _import_roots() -> list[str]:
    """The directories PyNaCl and its cffi backend come from: the isolated helper imports them from there only."""
    import nacl

    roots: list[str] = []
    for module in (nacl, sys.modules.get("_cffi_backend")):
        file = getattr(module, "__file__", None)
        if file:
            path = Path(file).resolve()
            root = path.parents[1] if path.name == "__init__.py" else path.parent
            if str(root) not in roots:
                roots.append(str(root))
    return roots


class SignHelper:
    """The helper process and the lock that keeps one request in flight at a time.

    The helper is handed each key once (a `K` frame on its stdin, an inherited pipe), never on its command line
    or in its environment; requests name the key by number. A helper that dies, or does not take or answer a
    request in time, is killed and replaced on next use; the request it failed is signed in this process.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.starting = False
        self.failures = 0
        self.keys: dict[str, int] = {}  # public key -> its number in the current helper
        self.starter: threading.Thread | None = None

    @property
    def failed(self) -> bool:
        """Whether this process has given up on helpers and signs for itself."""
        return self.failures >= _MAX_FAILURES

    def start_in_background(self) -> None:
        with self.lock:
            if self.starting or self.process is not None or self.failed:
                return
            self.starting = True
        self.starter = threading.Thread(target=self._start, name="hashed-sign-helper-start", daemon=True)
        self.starter.start()

    def _start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "HASHED_INSTRUMENT"}  # the helper guards nothing
        try:
            setup = json.dumps({"path": _import_roots(), "context": SIGNING_CONTEXT.hex()}).encode()
            process = subprocess.Popen(  # noqa: S603 - this package's own worker file, by its absolute path
                [sys.executable, "-I", str(_WORKER)],  # -I: no cwd, no user site, no PYTHON* variables
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                close_fds=True,
                bufsize=0,
            )
        except OSError as exc:
            _log.info("hashed: no signing helper process (%s); signing in this process", exc)
            with self.lock:
                self.failures, self.starting = _MAX_FAILURES, False
            return
        if process.stdin is None or not self._write(process, _frame(b"P", setup), self._deadline(0)):
            with self.lock:
                self._retire(process, "did not start")
                self.starting = False
            return
        os.set_blocking(process.stdin.fileno(), False)  # later writes wait in select, with a deadline
        with self.lock:
            self.process, self.keys, self.starting = process, {}, False

    @staticmethod
    def _deadline(count: int) -> float:
        return time.monotonic() + _TIMEOUT + _PER_HASH * count

    @staticmethod
    def _write(process: subprocess.Popen[bytes], data: bytes, deadline: float) -> bool:
        if process.stdin is None:
            return False
        fd = process.stdin.fileno()
        view = memoryview(data)
        while view:
            if not _ready(fd, select.POLLOUT, deadline):
                return False
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue
            except OSError:
                return False
        return True

    @staticmethod
    def _read(process: subprocess.Popen[bytes], size: int, deadline: float) -> bytes | None:
        if process.stdout is None:
            return None
        fd = process.stdout.fileno()
        parts: list[bytes] = []
        while size:
            if not _ready(fd, select.POLLIN, deadline):
                return None
            try:
                chunk = os.read(fd, size)
            except OSError:
                return None
            if not chunk:
                return None
            parts.append(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def send(self, identity: Identity, digests: Sequence[bytes]) -> bool:
        """Send one request (the caller holds `lock`); False when the helper is not there (yet, or any more)."""
        process = self.process
        if process is None or process.stdin is None:
            return False
        index = self.keys.get(identity.public_key)
        data = b""
        if index is None:
            index = len(self.keys)
            if index > 0xFFFF:
                return False
            data = _frame(b"K", identity.seed)  # once per key and helper
        data += _frame(b"S", struct.pack(">H", index) + b"".join(digests))
        if not self._write(process, data, self._deadline(len(digests))):
            self._retire(process, "did not take a request")
            return False
        self.keys[identity.public_key] = index
        return True

    def receive(self, count: int) -> list[bytes] | None:
        """The answer to the oldest request still unanswered (the caller holds `lock`), or None if it broke."""
        process = self.process
        if process is None:
            return None
        deadline = self._deadline(count)
        header = self._read(process, 4, deadline)
        size = struct.unpack(">I", header)[0] if header is not None else -1
        body = self._read(process, size, deadline) if size == 64 * count else None
        if body is None:
            self._retire(process, "did not answer")
            return None
        self.failures = 0
        return [body[i : i + 64] for i in range(0, len(body), 64)]

    def sign(self, identity: Identity, digests: Sequence[bytes]) -> list[bytes] | None:
        """Signatures from the helper in one round trip, or None when it is not there (yet, or any more)."""
        with self.lock:
            if not self.send(identity, digests):
                return None
            return self.receive(len(digests))

    def _retire(self, process: subprocess.Popen[bytes], what: str) -> None:
        self.failures += 1
        then = "signing in this process from now on" if self.failed else "starting a new one"
        _log.warning("hashed: the signing helper %s (it died or hung); %s", what, then)
        self.process, self.keys = None, {}
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
        self.process, self.starting, self.failures, self.keys, self.starter = None, False, 0, {}, None

    def stop(self) -> None:
        """At exit: close the helper's input (it ends), and wait for it briefly."""
        starter = self.starter
        if starter is not None and starter is not threading.current_thread():
            starter.join(5)
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
