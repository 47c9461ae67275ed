"""Retention: archive each agent's records older than N days to JSONL files, then delete them from the database.

What is cut is always a **prefix** of a chain: the records up to the last one received before the cut-off, never
the agent's head record (it anchors the chain that goes on). Each archive file holds whole records as they were
shipped (the export format), so `hashed verify FILE --key …` checks it offline; the first record kept in the
database names the hash of the last archived one (`prev`), which joins the two. A file is written, synced and
verified before anything is deleted, and one transaction per agent deletes exactly the archived records.

Retention deletes records only. Each agent's Merkle tree (`merkle_tiles`, `trees`) and the checkpoints
(`checkpoints`) stay, so every checkpoint, the agent's or the backend's, stays provable after its records are
archived: an inclusion proof of an archived record by seq, and any consistency proof, are read from the tree's
tiles alone (docs/operations.md, "Transparency"). The tree costs ≈ 34 bytes per record (16 hashes a row), kept.

Example:
    >>> archive_name(1, 250)
    '000000000001-000000000250.jsonl'
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import orjson
from sqlalchemy import Connection, and_, delete, func, select

from hashed.errors import ChainBrokenError
from hashed.protocol import GENESIS, ChainVerifier
from hashed_backend.db.models import Agent, Record

__all__ = ["Cut", "apply", "archive_name", "plan"]

_NS_PER_DAY = 86_400 * 10**9


@dataclasses.dataclass
class Cut:
    """The records of one agent that retention archives and deletes: seq `first` to `last`."""

    agent_id: str
    org_id: str
    name: str
    first: int
    last: int
    file: Path | None = None
    last_hash: str = ""
    sha256: str = ""

    @property
    def records(self) -> int:
        """How many records the cut holds."""
        return self.last - self.first + 1


def archive_name(first: int, last: int) -> str:
    """The file name of an archive of seq `first`..`last` (sorts in chain order)."""
    return f"{first:012d}-{last:012d}.jsonl"


def _cut(conn: Connection, cut: Cut, head_seq: int, cutoff_ns: int) -> Cut | None:
    # The prefix of records received before the cut-off, the head record excepted. Any prefix will do: the tree's
    # nodes, not the records, prove the checkpoints.
    first: int | None = conn.execute(select(func.min(Record.seq)).where(Record.agent_id == cut.agent_id)).scalar()
    if first is None:
        return None
    newer: int | None = conn.execute(
        select(func.min(Record.seq)).where(Record.agent_id == cut.agent_id, Record.received_ns >= cutoff_ns)
    ).scalar()
    cut.first = first
    cut.last = min(head_seq - 1, (newer if newer is not None else head_seq + 1) - 1)
    return cut if cut.last >= cut.first else None


def plan(conn: Connection, days: float, now_ns: int | None = None) -> list[Cut]:
    """What `apply` would archive and delete for records older than `days` days."""
    cutoff = (now_ns if now_ns is not None else time.time_ns()) - int(days * _NS_PER_DAY)
    columns = (Agent.id, Agent.org_id, Agent.name, Agent.head_seq)
    agents = conn.execute(select(*columns).order_by(Agent.org_id, Agent.id)).all()
    cuts = (_cut(conn, Cut(agent_id, org_id, name, 0, 0), head, cutoff) for agent_id, org_id, name, head in agents)
    return [cut for cut in cuts if cut is not None]


def _archive(conn: Connection, cut: Cut, folder: Path) -> None:
    target = folder / cut.org_id / cut.agent_id / archive_name(cut.first, cut.last)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    digest = hashlib.sha256()
    verifier: ChainVerifier | None = None
    rows = conn.execute(
        select(Record.raw)
        .where(Record.agent_id == cut.agent_id, Record.seq.between(cut.first, cut.last))
        .order_by(Record.seq)
        .execution_options(yield_per=2000)
    ).scalars()
    with tmp.open("wb") as out:
        for raw in rows:
            record = orjson.loads(raw)
            if verifier is None:
                start = (0, GENESIS) if cut.first == 1 else (cut.first - 1, record.get("prev", GENESIS))
                verifier = ChainVerifier(key=None, seq=start[0], head=start[1])
            verifier.check(record)  # an archive is written only of records that verify
            line = (raw.encode() if isinstance(raw, str) else raw) + b"\n"  # as shipped, byte for byte
            digest.update(line)
            out.write(line)
        out.flush()
        os.fsync(out.fileno())
    if verifier is None or verifier.seq != cut.last:
        tmp.unlink()
        raise ChainBrokenError(cut.last, f"agent {cut.agent_id}: records {cut.first}..{cut.last} are not all stored")
    os.chmod(tmp, 0o600)
    tmp.replace(target)
    cut.file, cut.last_hash, cut.sha256 = target, verifier.head, digest.hexdigest()


def apply(conn: Connection, cuts: list[Cut], folder: Path) -> list[Cut]:
    """Archive each cut under `folder`, then delete its records (one transaction per agent); returns the cuts.

    A manifest (`retention-<time>.json`) lists every file with its range, last hash and SHA-256.
    """
    done = []
    for cut in cuts:
        _archive(conn, cut, folder)
        conn.rollback()  # end the read transaction of the archive before the write
        with conn.begin():
            joined = conn.execute(
                select(Record.raw).where(Record.agent_id == cut.agent_id, Record.seq == cut.last + 1)
            ).scalar_one()
            if orjson.loads(joined).get("prev") != cut.last_hash:
                raise ChainBrokenError(cut.last + 1, f"agent {cut.agent_id}: the kept chain does not join the archive")
            deleted = conn.execute(
                delete(Record).where(and_(Record.agent_id == cut.agent_id, Record.seq.between(cut.first, cut.last)))
            ).rowcount
            if deleted != cut.records:
                raise ChainBrokenError(
                    cut.last, f"agent {cut.agent_id}: {deleted} records deleted, {cut.records} archived"
                )
        done.append(cut)
    manifest = [{k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(cut).items()} for cut in done]
    (folder / f"retention-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json").write_bytes(
        orjson.dumps({"format": "hashed-retention/1", "cuts": manifest}, option=orjson.OPT_INDENT_2)
    )
    return done
