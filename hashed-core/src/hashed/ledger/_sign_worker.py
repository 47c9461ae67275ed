"""The signing helper process: reads batches of record hashes on stdin, writes their signatures on stdout.

`_sign_helper.py` runs this file by its path with `python -I`, so nothing from the current directory, the
user's site-packages or `PYTHON*` variables is imported (issue #14, item 10: a `hashed/` folder in the current
directory once replaced the helper and received the key). It imports only the standard library until the
first frame says where PyNaCl is installed.

Every frame is a 1-byte type, a 4-byte big-endian length and a body:

- `P` (once, first): JSON `{"path": [directories holding nacl and its cffi backend], "context": hex}`;
- `K`: a 32-byte Ed25519 seed, handed once per key; keys are numbered 0, 1, … in the order they arrive;
- `S`: a 2-byte key number, then n 32-byte record hashes. Answer: a 4-byte length, then n 64-byte
  signatures of `context + hash`.

End of input ends the process. Any malformed frame ends it too (the parent then signs in its own process).
"""

from __future__ import annotations

import json
import struct
import sys
from typing import BinaryIO

__all__ = ["serve"]

_HEADER = struct.Struct(">cI")


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def _frame(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    header = _read(stream, _HEADER.size)
    if header is None:
        return None
    kind, size = _HEADER.unpack(header)
    body = _read(stream, size)
    return None if body is None else (kind, body)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer requests until stdin closes."""
    first = _frame(stdin)
    if first is None or first[0] != b"P":
        return
    setup = json.loads(first[1])
    sys.path[:0] = [entry for entry in setup["path"] if entry not in sys.path]
    # only now: from where the parent found it, never from the current directory
    from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

    context = bytes.fromhex(setup["context"])
    keys: list[bytes] = []  # libsodium's secret keys (seed and public key)
    while (frame := _frame(stdin)) is not None:
        kind, body = frame
        if kind == b"K" and len(body) == 32:
            keys.append(crypto_sign_seed_keypair(body)[1])
            continue
        if kind != b"S" or len(body) < 2 or (len(body) - 2) % 32:
            return
        # crypto_sign (signature, then the message) rather than SigningKey.sign, whose SignedMessage costs ≈ 3 µs
        # more per signature: this process's time per signature bounds the ledger's sustained throughput
        secret = keys[struct.unpack(">H", body[:2])[0]]
        out = b"".join([crypto_sign(context + body[i : i + 32], secret)[:64] for i in range(2, len(body), 32)])
        stdout.write(struct.pack(">I", len(out)) + out)
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
