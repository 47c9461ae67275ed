"""`hashed verify --checkpoint`: is this chain the history the agent signed, whole, neither cut off nor rewritten?

A hash chain cannot show records cut off its end, nor a second history the same key wrote; a checkpoint the
agent signed (its tree size and Merkle root, docs/protocol.md §8) can: the chain must reach the checkpoint's size,
and the Merkle root of that many records must be the checkpoint's.
"""

from __future__ import annotations

from pathlib import Path

from hashed.errors import ChainBrokenError, HashedError, NoteError
from hashed.ledger import read_export, read_ledger
from hashed.protocol import Checkpoint, CompactRange, NoteVerifier, VerifyReport, agent_origin, open_checkpoint

__all__ = ["against_checkpoint"]


def against_checkpoint(path: Path, live: bool, report: VerifyReport, note: str) -> ChainBrokenError | None:
    """None when the verified chain at `path` is the history `note` signed; else why not, at which record.

    The checkpoint must be signed by the key in force at its size: the chain's first key, or the key its signed
    rotations moved to by then (a checkpoint past the chain's end may be signed by any of the chain's keys).

    Raises:
        HashedError: the note is not a checkpoint signed by the key in force at its size.
    """
    if not report.keys or report.first_seq != 1:
        raise HashedError("a checkpoint is checked against a whole chain, from record 1 (not --partial)")
    try:
        size = Checkpoint.parse(note[: note.rfind("\n\n") + 1]).size
    except NoteError as exc:
        raise HashedError(f"not a checkpoint: {exc}") from exc
    tree, in_force = CompactRange(), report.keys[0]
    if 0 < size <= report.count:
        for record in read_ledger(path) if live else read_export(path):
            tree.append(bytes.fromhex(record["hash"]))
            in_force = record["new_key"] if record["kind"] == "key_rotation" else record["key"]
            if tree.size == size:
                break
    keys = [in_force] if size <= report.count else report.keys
    origin = agent_origin(report.keys[0])
    try:
        signed = open_checkpoint(note, [NoteVerifier(origin, bytes.fromhex(key)) for key in keys])
    except HashedError as exc:
        raise HashedError(
            f"the checkpoint is not one this chain's key in force at size {size} ({keys[-1][:16]}…) signed: {exc}"
        ) from exc
    if size > report.count:
        return ChainBrokenError(
            report.count + 1,
            f"the agent's checkpoint covers {size} records, the chain ends at {report.count}: "
            "records were cut off its tail",
            code="truncated",
        )
    if tree.root() != signed.checkpoint.root:
        return ChainBrokenError(
            size,
            f"records 1–{size} are not the history the agent's checkpoint signed: rewritten, or a fork",
            code="forked",
        )
    return None
