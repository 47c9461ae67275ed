r"""C2SP checkpoints (c2sp.org/tlog-checkpoint), their cosignatures, and split-view evidence.

    <origin>\n<tree size, decimal>\n<root hash, base64>\n[extension lines]

signed as a note (`hashed.protocol._note`). An agent's log is named after the public key its chain starts
with, `hashed.dev/agent/<64 hex>` (`agent_origin`): unique without a registry, checkable against record 1, and
unchanged when the key rotates (the name stays, the key ID changes). The agent signs under the origin as key
name; the backend and witnesses sign the same text under their own names.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterable, Sequence

from hashed.errors import NoteError, ProofError
from hashed.protocol._merkle import HASH_SIZE, verify_consistency
from hashed.protocol._note import (
    COSIGNATURE_V1,
    Note,
    NoteSignature,
    NoteVerifier,
    format_note,
    open_note,
    sign_note_text,
)
from hashed.protocol._requests import SigningIdentity

__all__ = [
    "ORIGIN_PREFIX",
    "Checkpoint",
    "SignedCheckpoint",
    "SplitView",
    "agent_origin",
    "cosign_checkpoint",
    "find_split_view",
    "open_checkpoint",
    "sign_checkpoint",
    "verify_cosigned",
]

ORIGIN_PREFIX = "hashed.dev/agent/"
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_MAX_SIZE = 2**63 - 1


def agent_origin(public_key: str) -> str:
    """The origin line of the log whose chain starts with `public_key` (hex).

    Example:
        >>> agent_origin("AB" * 32)[:21]
        'hashed.dev/agent/abab'
    """
    key = public_key.lower()
    if len(key) != 64 or any(ch not in "0123456789abcdef" for ch in key):
        raise ValueError(f"{public_key!r} is not a 32-byte public key in hex")
    return ORIGIN_PREFIX + key


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    r"""A log's tree head: who (origin), how many leaves (size), and the root hash.

    Example:
        >>> Checkpoint("example.com/log", 1, bytes(32)).text
        'example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n'
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("a checkpoint origin is one non-empty line")
        if not 0 <= self.size <= _MAX_SIZE:
            raise NoteError(f"tree size {self.size} is out of range")
        if len(self.root) != HASH_SIZE:
            raise NoteError(f"a root hash is {HASH_SIZE} bytes, not {len(self.root)}")
        if any(not line or "\n" in line for line in self.extensions):
            raise NoteError("extension lines are non-empty single lines")

    @property
    def text(self) -> str:
        """The checkpoint body: what is signed."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint body (strictly: decimal size without leading zeros, a 32-byte base64 root)."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is at least three lines (origin, size, root), each ending in a newline")
        origin, size, root, *extensions = lines[:-1]
        if not _SIZE.fullmatch(size):
            raise NoteError(f"checkpoint size {size[:30]!r} is not a decimal number without leading zeros")
        try:
            digest = base64.b64decode(root, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError(f"checkpoint root {root[:60]!r} is not base64") from None
        if base64.b64encode(digest).decode() != root:
            raise NoteError("checkpoint root is not in canonical base64")
        return cls(origin, int(size), digest, tuple(extensions))


@dataclasses.dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose note verified: the parsed body, the opened note, and the note as received."""

    checkpoint: Checkpoint
    note: Note
    raw: str

    def cosigned_by(self, witnesses: Iterable[NoteVerifier]) -> list[str]:
        """Names of the given witnesses whose cosignature is on the note (already verified when opened)."""
        wanted = {(w.name, w.key_id) for w in witnesses}
        return sorted({s.name for s in self.note.signatures if (s.name, s.key_id) in wanted})


def sign_checkpoint(checkpoint: Checkpoint, identity: SigningIdentity, name: str | None = None) -> str:
    """The checkpoint as a note signed by `identity` (key name: the origin, unless `name` is given)."""
    return format_note(checkpoint.text, [sign_note_text(checkpoint.text, name or checkpoint.origin, identity)])


def cosign_checkpoint(checkpoint: Checkpoint, name: str, identity: SigningIdentity, timestamp: int) -> NoteSignature:
    """A witness's timestamped cosignature (type 0x04) of `checkpoint`, to append to its note."""
    return sign_note_text(checkpoint.text, name, identity, signature_type=COSIGNATURE_V1, timestamp=timestamp)


def open_checkpoint(note: str | bytes, verifiers: Iterable[NoteVerifier]) -> SignedCheckpoint:
    """Verify a checkpoint note against trusted keys and parse its body.

    Raises:
        NoteError: the note is malformed, not signed by any of `verifiers`, or not a checkpoint.
    """
    raw = note.decode("utf-8", errors="replace") if isinstance(note, bytes) else note
    opened = open_note(note, verifiers)
    return SignedCheckpoint(Checkpoint.parse(opened.text), opened, raw)


def verify_cosigned(
    note: str | bytes, log: Sequence[NoteVerifier], witnesses: Sequence[NoteVerifier], required: int
) -> SignedCheckpoint:
    """Trust a checkpoint only if the log signed it and at least `required` of `witnesses` cosigned it.

    Args:
        note: the checkpoint with its signature lines (log signature and cosignatures).
        log: the log's verifier keys (the agent's, or the backend's).
        witnesses: trusted witness keys (type 0x04, or 0x01 keys, which are read as their cosigning form).
        required: how many distinct witnesses must have cosigned.

    Raises:
        NoteError: the log's signature is missing or bad, a cosignature is bad, or too few witnesses cosigned.
    """
    cosigners = [w if w.signature_type == COSIGNATURE_V1 else w.as_cosigner() for w in witnesses]
    signed = open_checkpoint(note, [*log, *cosigners])
    logs = {(v.name, v.key_id) for v in log}
    if not any((s.name, s.key_id) in logs for s in signed.note.signatures):
        raise NoteError(f"checkpoint of {signed.checkpoint.origin} is not signed by the log's key")
    names = signed.cosigned_by(cosigners)
    if len(names) < required:
        have = ", ".join(names) or "none"
        raise NoteError(f"{len(names)} of the {required} witness cosignatures required ({have}): do not trust it yet")
    return signed


@dataclasses.dataclass(frozen=True)
class SplitView:
    """Evidence that one log showed two histories: both signed checkpoints and why they cannot both hold."""

    origin: str
    first: str
    second: str
    reason: str
    proof: tuple[bytes, ...] = ()

    def report(self) -> str:
        """The evidence as text: the reason, then both notes (anyone holding the log's key can check them)."""
        proof = "".join(base64.b64encode(p).decode() + "\n" for p in self.proof)
        extra = f"consistency proof offered:\n{proof}\n" if proof else ""
        return f"split view of {self.origin}: {self.reason}\n\n{extra}first:\n{self.first}\nsecond:\n{self.second}"


def find_split_view(a: SignedCheckpoint, b: SignedCheckpoint, proof: Sequence[bytes] = ()) -> SplitView | None:
    """Two checkpoints of one log that cannot both be true, as evidence; None when they are consistent.

    Same size and different roots is a split view on its face. Different sizes need the consistency proof
    from the smaller to the larger (from whoever claims they agree): if it does not verify, it is a split view.

    Raises:
        ValueError: the checkpoints are of different logs, or sizes differ and no proof was given.
    """
    if a.checkpoint.origin != b.checkpoint.origin:
        raise ValueError(f"{a.checkpoint.origin} and {b.checkpoint.origin} are different logs")
    small, large = (a, b) if a.checkpoint.size <= b.checkpoint.size else (b, a)
    if small.checkpoint.size == large.checkpoint.size:
        if small.checkpoint.root == large.checkpoint.root:
            return None
        reason = f"two different roots for tree size {small.checkpoint.size}"
    elif small.checkpoint.size == 0:
        return None  # every tree extends the empty one
    elif not proof:
        raise ValueError("checkpoints of different sizes need a consistency proof to be compared")
    else:
        try:
            verify_consistency(
                small.checkpoint.size, large.checkpoint.size, small.checkpoint.root, large.checkpoint.root, proof
            )
        except ProofError as exc:
            reason = f"size {small.checkpoint.size} is not a prefix of size {large.checkpoint.size}: {exc}"
        else:
            return None
    return SplitView(small.checkpoint.origin, small.raw, large.raw, reason, tuple(proof))
