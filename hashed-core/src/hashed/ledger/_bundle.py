"""An offline audit bundle from an agent's own ledger (`hashed logs export --bundle`, docs/protocol.md §8.7).

The bundle holds the signed prefix of the chain (a live agent's last few unsigned records go in the next one), every
checkpoint the ledger stored with the witness cosignatures gathered for it, and the consistency proofs between them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from pathlib import Path
from typing import IO, Any

from hashed.errors import LedgerError
from hashed.ledger._checkpoints import all_checkpoints
from hashed.ledger._db import Database
from hashed.ledger._export import read_ledger
from hashed.protocol import write_bundle

__all__ = ["BundleSummary", "write_ledger_bundle"]


@dataclasses.dataclass(frozen=True)
class BundleSummary:
    """What a bundle holds: records, checkpoints, the size the newest covers, and records left out (unsigned)."""

    records: int
    checkpoints: int
    covered: int
    cosignatures: int
    unsigned: int
    key: str


def write_ledger_bundle(ledger: Path, out: IO[bytes]) -> BundleSummary:
    """Write the bundle of the ledger at `ledger` to `out`.

    Raises:
        LedgerError: no records, a damaged ledger, or a checkpoint beyond the records (records were lost).
    """
    records: list[dict[str, Any]] = []
    unsigned = 0
    for record in read_ledger(ledger):
        if record["sig"] is None or unsigned:
            unsigned += 1
            continue
        records.append(record)
    if not records:
        raise LedgerError(f"{ledger} holds no signed record: there is nothing to bundle yet")
    notes = _checkpoints(ledger)
    try:
        written = write_bundle(out, [bytes.fromhex(r["hash"]) for r in records], records[0]["key"], notes, records)
    except ValueError as exc:
        raise LedgerError(f"{ledger}: {exc} (check it: hashed verify {ledger} --checkpoint FILE)") from exc
    sizes = [int(note.split("\n", 2)[1]) for note in notes]
    cosigned = sum(note[note.rfind("\n\n") :].count("\n— ") - 1 for note in notes)
    return BundleSummary(written, len(set(sizes)), max(sizes, default=0), cosigned, unsigned, records[0]["key"])


def _checkpoints(ledger: Path) -> list[str]:
    db = Database(ledger, readonly=True)
    try:
        return all_checkpoints(db)
    except sqlite3.Error as exc:  # a ledger older than checkpoints has no table: no checkpoint to bundle
        if "no such table" in str(exc):
            return []
        raise LedgerError(f"cannot read the checkpoints of {ledger}: {exc}") from exc
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.close()
