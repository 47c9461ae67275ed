"""The signing helper process: reads batches of record hashes on stdin, writes their signatures on stdout.

Run as `python -m hashed.ledger._sign_worker` by `_sign_service.py`. Each request is a 4-byte big-endian
length, then a 32-byte Ed25519 seed and n 32-byte record hashes; each answer is a 4-byte length, then n
64-byte signatures of `signing_message(hash)`. End of input ends the process.
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

import nacl.signing

from hashed.protocol._record import SIGNING_CONTEXT

__all__ = ["serve"]


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer requests until stdin closes."""
    keys: dict[bytes, nacl.signing.SigningKey] = {}
    while True:
        header = _read(stdin, 4)
        if header is None:
            return
        payload = _read(stdin, struct.unpack(">I", header)[0])
        if payload is None:
            return
        seed, hashes = payload[:32], payload[32:]
        key = keys.get(seed)
        if key is None:
            key = keys[seed] = nacl.signing.SigningKey(seed)
        sign = key.sign
        out = b"".join(sign(SIGNING_CONTEXT + hashes[i : i + 32]).signature for i in range(0, len(hashes), 32))
        stdout.write(struct.pack(">I", len(out)) + out)
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
