"""Re-verify every stored chain: each record's hash and signature, each link, and each agent's head.

A chain may start after seq 1 when retention archived its beginning (`ops.retention`): it is then verified from
its first kept record, whose `prev` is the hash of the last archived one, and the report says where it starts.
Checking the archive against that join is `hashed verify` on the archive files.

Example:
    >>> verify_chain([], keys=["ab" * 32], head=(0, "0" * 64)).ok
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, select

from hashed.errors import ChainBrokenError
from hashed.protocol import GENESIS, ChainVerifier
from hashed_backend.db.models import Agent, AgentKey, Record

__all__ = ["ChainReport", "StoreReport", "verify_chain", "verify_store"]


@dataclasses.dataclass
class ChainReport:
    """One agent's stored chain, as verified now."""

    agent_id: str
    org_id: str
    name: str
    records: int
    first_seq: int  # 1, or the first record kept after retention; 0 when no record is stored
    verified_seq: int
    head_seq: int
    head_hash: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Every record verified and the last one is the agent's head."""
        return self.error is None


@dataclasses.dataclass
class StoreReport:
    """Every agent's chain in a database."""

    chains: list[ChainReport]

    @property
    def ok(self) -> bool:
        """Every chain verified."""
        return all(chain.ok for chain in self.chains)

    @property
    def records(self) -> int:
        """Records verified in all."""
        return sum(chain.records for chain in self.chains)

    def heads(self) -> dict[str, dict[str, Any]]:
        """`{agent id: {"seq", "hash", "records", "first_seq"}}`, what a backup manifest keeps."""
        return {
            c.agent_id: {"seq": c.head_seq, "hash": c.head_hash, "records": c.records, "first_seq": c.first_seq}
            for c in self.chains
        }


def verify_chain(raws: Iterable[str | bytes], *, keys: Sequence[str], head: tuple[int, str]) -> ChainReport:
    """Verify one agent's records (their stored JSON, in seq order) against its keys and stored head."""
    report = ChainReport("", "", "", 0, 0, 0, head[0], head[1])
    verifier: ChainVerifier | None = None
    try:
        for raw in raws:
            record = orjson.loads(raw)
            if verifier is None:
                report.first_seq = record.get("seq") if isinstance(record.get("seq"), int) else 0
                if report.first_seq == 1:
                    verifier = ChainVerifier(key=keys[0] if keys else None)
                else:  # retention archived the beginning: the first kept record joins the archive by its prev
                    prev = record.get("prev") if isinstance(record.get("prev"), str) else GENESIS
                    verifier = ChainVerifier(key=None, seq=report.first_seq - 1, head=prev)
                    if record.get("key") not in keys:
                        raise ChainBrokenError(report.first_seq, "signed with a key this agent never held")
            verifier.check(record)
            report.records += 1
            report.verified_seq = verifier.seq
    except ChainBrokenError as exc:
        report.error = str(exc)
        return report
    last = (verifier.seq, verifier.head) if verifier is not None else (0, GENESIS)
    if last != head:
        report.error = (
            f"the stored records end at seq {last[0]} but the agent's head is seq {head[0]}"
            " (records missing at the end, or a head that was rewritten)"
        )
    return report


def verify_store(conn: Connection) -> StoreReport:
    """Verify every agent of every organisation, one chain at a time (streamed: memory stays flat)."""
    chains = []
    columns = (Agent.id, Agent.org_id, Agent.name, Agent.public_key, Agent.head_seq, Agent.head_hash)
    agents = conn.execute(select(*columns).order_by(Agent.org_id, Agent.created_ns, Agent.id)).all()
    for agent in agents:
        keys = list(
            conn.execute(
                select(AgentKey.public_key)
                .where(AgentKey.agent_id == agent.id)
                .order_by(AgentKey.added_ns, AgentKey.id)
            ).scalars()
        ) or [agent.public_key]
        raws = conn.execute(
            select(Record.raw).where(Record.agent_id == agent.id).order_by(Record.seq).execution_options(yield_per=2000)
        ).scalars()
        report = verify_chain(raws, keys=keys, head=(agent.head_seq, agent.head_hash))
        report.agent_id, report.org_id, report.name = agent.id, agent.org_id, agent.name
        chains.append(report)
    return StoreReport(chains)
