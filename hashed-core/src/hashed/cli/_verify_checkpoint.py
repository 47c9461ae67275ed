"""`hashed verify --checkpoint`: is this chain the history the agent signed, whole, neither cut off nor rewritten?

A hash chain cannot show records cut off its end, nor a second history the same key wrote; a checkpoint the
agent signed (its tree size and Merkle root, docs/protocol.md §8) can: the chain must reach the checkpoint's size,
and the Merkle root of that many records must be the checkpoint's.
"""

from __future__ import annotations

from pathlib import Path

from hashed.errors import ChainBrokenError, HashedError
from hashed.ledger import read_export, read_ledger
from hashed.protocol import CompactRange, NoteVerifier, VerifyReport, agent_origin, open_checkpoint

__all__ = ["against_checkpoint"]


def against_checkpoint(path: Path, live: bool, report: VerifyReport, note: str) -> ChainBrokenError | None:
    """None when the verified chain at `path` is the history `note` signed; else why not, at which record.

    Raises:
        HashedError: the note is not a checkpoint signed by the key the chain starts with.
    """
    if not report.keys or report.first_seq != 1:
        raise HashedError("a checkpoint is checked against a whole chain, from record 1 (not --partial)")
    first = report.keys[0]
    try:
        signed = open_checkpoint(note, [NoteVerifier(agent_origin(first), bytes.fromhex(first))])
    except HashedError as exc:
        raise HashedError(f"the checkpoint is not one this chain's key ({first[:16]}…) signed: {exc}") from exc
    size = signed.checkpoint.size
    if size > report.count:
        return ChainBrokenError(
            report.count + 1,
            f"the agent's checkpoint covers {size} records, the chain ends at {report.count}: "
            "records were cut off its tail",
            code="truncated",
        )
    tree = CompactRange()
    for record in read_ledger(path) if live else read_export(path):
        tree.append(bytes.fromhex(record["hash"]))
        if tree.size == size:
            break
    if tree.root() != signed.checkpoint.root:
        return ChainBrokenError(
            size,
            f"records 1–{size} are not the history the agent's checkpoint signed: rewritten, or a fork",
            code="forked",
        )
    return None
