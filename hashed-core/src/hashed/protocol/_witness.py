"""The C2SP tlog-witness `add-checkpoint` exchange: the request body and the witness's decision, without I/O.

    POST <prefix>/add-checkpoint
    body: "old <size>", then 0 to 63 base64 proof hashes, one a line, a blank line, the signed checkpoint

    200  cosignature lines          409  the witness's size (text/x.tlog.size), or the same size with another root
    400  malformed, or old > size   403  no trusted signature      404  unknown origin      422  the proof fails

The store and the HTTP server live in `hashed.witness`; this module decides, so any host can serve it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Mapping, Sequence

from hashed.errors import NoteError, ProofError
from hashed.protocol._checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from hashed.protocol._merkle import EMPTY_ROOT, verify_consistency
from hashed.protocol._note import NoteVerifier

__all__ = [
    "MAX_PROOF_LINES",
    "AddCheckpoint",
    "WitnessDecision",
    "decide_add_checkpoint",
    "format_add_checkpoint",
    "parse_add_checkpoint",
]

MAX_PROOF_LINES = 63
_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")


@dataclasses.dataclass(frozen=True)
class AddCheckpoint:
    """One add-checkpoint request: the size the client believes the witness holds, a proof, a checkpoint note."""

    old: int
    proof: tuple[bytes, ...]
    note: str


def format_add_checkpoint(old: int, proof: Sequence[bytes], note: str) -> bytes:
    """The request body for `POST <prefix>/add-checkpoint`."""
    lines = [f"old {old}", *(base64.b64encode(p).decode() for p in proof), ""]
    return ("\n".join(lines) + "\n" + note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Read a request body.

    Raises:
        NoteError: malformed (the witness answers 400).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("the request is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    match = _OLD.fullmatch(lines[0])
    if not sep or not match:
        raise NoteError("the request starts with 'old <size>', proof lines, then a blank line")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise NoteError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            digest = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError(f"proof line {line[:60]!r} is not base64") from None
        if len(digest) != 32:
            raise NoteError("a proof line is one 32-byte hash")
        proof.append(digest)
    return AddCheckpoint(int(match.group(1)), tuple(proof), note)


@dataclasses.dataclass(frozen=True)
class WitnessDecision:
    """What the witness answers, and what it must do first.

    Attributes:
        status: the HTTP status.
        detail: why, in words (the body of an error answer).
        signed: the verified checkpoint (200 and the misbehaviour cases).
        conflict_size: the witness's size, for a 409.
        misbehaviour: set when the log signed something that contradicts, or cannot be shown to extend, what
            the witness holds (`split view`, `unproven`): keep both notes as evidence.
    """

    status: int
    detail: str
    signed: SignedCheckpoint | None = None
    conflict_size: int | None = None
    misbehaviour: str | None = None


def decide_add_checkpoint(
    request: AddCheckpoint, logs: Mapping[str, Sequence[NoteVerifier]], latest: Checkpoint | None
) -> WitnessDecision:
    """The witness's checks, in the order tlog-witness lists them, against the latest checkpoint it cosigned.

    Args:
        request: the parsed request.
        logs: trusted log keys by origin.
        latest: what the witness last cosigned for this origin (None: never); look it up by the request's
            origin, read with `Checkpoint.parse` on the unverified text first (the origin picks the keys).
    """
    try:
        origin = Checkpoint.parse(request.note[: request.note.rfind("\n\n") + 1]).origin
    except NoteError as exc:
        return WitnessDecision(400, f"not a checkpoint: {exc}")
    keys = logs.get(origin)
    if not keys:
        return WitnessDecision(404, f"unknown log {origin}")
    try:
        signed = open_checkpoint(request.note, keys)
    except NoteError as exc:
        return WitnessDecision(403, f"checkpoint of {origin} is not signed by a trusted key: {exc}")
    new, held = signed.checkpoint, latest.size if latest else 0
    if new.size == 0 and new.root != EMPTY_ROOT:
        return WitnessDecision(400, "the root of an empty tree is SHA-256 of nothing")
    if request.old > new.size:
        return WitnessDecision(400, f"old size {request.old} is larger than the checkpoint's size {new.size}")
    if request.old != held:
        return WitnessDecision(409, f"this witness holds size {held}", signed, conflict_size=held)
    if latest is not None and new.size == held:
        if new.root != latest.root:
            return WitnessDecision(
                409, f"another root for size {held}: split view", signed, conflict_size=held, misbehaviour="split view"
            )
        if request.proof:
            return WitnessDecision(422, "equal sizes need an empty proof", signed)
        return WitnessDecision(200, "already cosigned", signed)
    if latest is None or held == 0:
        if request.proof:
            return WitnessDecision(422, "the proof from size 0 must be empty", signed)
        return WitnessDecision(200, "first checkpoint of this log", signed)
    try:
        verify_consistency(held, new.size, latest.root, new.root, request.proof)
    except ProofError as exc:
        return WitnessDecision(422, f"not shown consistent with size {held}: {exc}", signed, misbehaviour="unproven")
    return WitnessDecision(200, "consistent", signed)
