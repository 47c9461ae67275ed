"""Log ingest: verify a batch of one agent's records against its stored chain, then store it in one transaction.

Verification is `hashed.ledger.ChainVerifier`, continued from the agent's stored head (`seq`, `hash`, key).
Ed25519 verification dominates the cost and PyNaCl releases the GIL, so a clean batch is cut into
contiguous chunks verified on a thread pool at once: chunk k starts from the claimed `seq`/`hash` of the
last record of chunk k-1, and chunk k-1's own verifier proves that claim, so all chunks passing proves the
whole run. Anything else (a duplicate, a reused nonce, a rotation, a failure) takes the sequential path,
which decides each record in order:

- `seq` at or below the verified head: `duplicate` if the stored record has the same hash, else refused
  (`conflict`: a different record already holds that place);
- a nonce this agent already used: refused (`nonce_reused`);
- otherwise `ChainVerifier.check`: stored, or refused with the verifier's reason.

Refused records go to the quarantine table with their code and reason, never to `records`. The agent's head
moves with a conditional UPDATE (`WHERE head_seq = <read> AND head_hash = <read>`); if another replica moved
it first, the batch is decided again against the new head (its records then count as duplicates).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from hashed.errors import ChainBrokenError
from hashed.ledger import GENESIS, ChainVerifier
from hashed_backend.credentials import now_ns
from hashed_backend.db.models import Agent, AgentKey, Quarantine, Record
from hashed_backend.db.session import Database
from hashed_backend.errors import ApiError
from hashed_backend.jsontext import json_text

__all__ = ["AgentChain", "Decided", "decide", "ingest", "refusal_code"]

_MIN_CHUNK = 32
_MAX_NONCE = 200
_INT64 = 2**63 - 1
_EFFECTS = frozenset({"allow", "deny", "pending"})
_ATTEMPTS = 5


# ChainVerifier's reasons, by their opening words, and the stable codes the API answers with.
def refusal_code(error: ChainBrokenError) -> str:
    """The API code for a verifier failure: the core's stable `ChainBrokenError.code`.

    Example:
        >>> refusal_code(ChainBrokenError(3, "hash does not match", code="hash_mismatch"))
        'hash_mismatch'
    """
    return error.code


@dataclass(frozen=True, slots=True)
class AgentChain:
    """What is stored of an agent's chain: where verification continues from."""

    agent_id: str
    key: str
    seq: int
    head: str


@dataclass(slots=True)
class Decided:
    """The fate of each record of a batch, and the chain after the stored ones."""

    results: list[dict[str, Any]] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    seq: int = 0
    head: str = GENESIS
    keys: list[str] = field(default_factory=list)


def _seq_of(record: Mapping[str, Any]) -> int | None:
    seq = record.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and -_INT64 <= seq <= _INT64 else None


def _refuse(out: Decided, index: int, seq: int | None, code: str, reason: str) -> None:
    out.results.append({"seq": seq, "status": "refused", "code": code, "reason": reason})
    out.refused.append(index)


def decide(
    records: Sequence[Mapping[str, Any]],
    chain: AgentChain,
    stored_hashes: Mapping[int, str],
    used_nonces: frozenset[str],
) -> Decided:
    """Decide every record in order (the sequential path); pure, so it runs on a worker thread."""
    verifier = ChainVerifier(key=chain.key, seq=chain.seq, head=chain.head)
    out = Decided(seq=chain.seq, head=chain.head)
    accepted: dict[int, str] = {}
    nonces: set[str] = set()
    for index, record in enumerate(records):
        seq = _seq_of(record)
        if seq is not None and seq <= verifier.seq:
            known = accepted.get(seq, stored_hashes.get(seq))
            if known is not None and known == record.get("hash"):
                out.results.append({"seq": seq, "status": "duplicate", "code": None, "reason": None})
            else:
                _refuse(
                    out,
                    index,
                    seq,
                    "conflict",
                    f"record {seq} is already stored with another hash: this forks the chain",
                )
            continue
        nonce = record.get("nonce")
        if isinstance(nonce, str) and (nonce in used_nonces or nonce in nonces):
            _refuse(
                out, index, seq, "nonce_reused", f"record {seq}: nonce already used by another record of this agent"
            )
            continue
        if isinstance(nonce, str) and len(nonce) > _MAX_NONCE:
            _refuse(out, index, seq, "malformed", f"record {seq}: nonce longer than {_MAX_NONCE} characters")
            continue
        try:
            verifier.check(record)
        except ChainBrokenError as exc:
            _refuse(out, index, seq, refusal_code(exc), str(exc))
            continue
        accepted[record["seq"]] = record["hash"]
        nonces.add(record["nonce"])
        out.results.append({"seq": seq, "status": "stored", "code": None, "reason": None})
        out.stored.append(index)
    out.seq, out.head, out.keys = verifier.seq, verifier.head, verifier.report.keys
    return out


def _verify_chunk(records: Sequence[Mapping[str, Any]], key: str, seq: int, head: str) -> bool:
    verifier = ChainVerifier(key=key, seq=seq, head=head)
    try:
        for record in records:
            verifier.check(record)
    except ChainBrokenError:
        return False
    return True


def _clean_run(records: Sequence[Mapping[str, Any]], chain: AgentChain, used_nonces: frozenset[str]) -> bool:
    """Whether the batch may take the parallel path: new records only, fresh nonces, no rotation."""
    nonces: set[str] = set()
    for record in records:
        seq, nonce = _seq_of(record), record.get("nonce")
        if seq is None or seq <= chain.seq or not isinstance(record.get("hash"), str):
            return False
        if not isinstance(nonce, str) or len(nonce) > _MAX_NONCE or nonce in nonces or nonce in used_nonces:
            return False
        if record.get("kind") == "key_rotation":
            return False
        nonces.add(nonce)
    return True


async def _decide_fast(
    records: Sequence[Mapping[str, Any]], chain: AgentChain, pool: Executor, threads: int
) -> Decided | None:
    """All records verified on `threads` threads at once, or None when any fails (then go sequential)."""
    chunks = max(1, min(threads, len(records) // _MIN_CHUNK))
    size = -(-len(records) // chunks)
    loop = asyncio.get_running_loop()
    jobs = []
    for start in range(0, len(records), size):
        seq, head = (chain.seq, chain.head) if start == 0 else (records[start - 1]["seq"], records[start - 1]["hash"])
        part = records[start : start + size]
        jobs.append(loop.run_in_executor(pool, _verify_chunk, part, chain.key, seq, head))
    if not all(await asyncio.gather(*jobs)):
        return None
    results = [{"seq": r["seq"], "status": "stored", "code": None, "reason": None} for r in records]
    last = records[-1]
    return Decided(results, list(range(len(records))), [], last["seq"], last["hash"], [chain.key])


def _timestamp(ts: Any) -> int | None:
    """The record's `ts` (nanoseconds, a decimal string) as an integer column value, when it is one."""
    if isinstance(ts, str) and ts.isascii() and ts.isdigit() and len(ts) <= 19 and int(ts) <= _INT64:
        return int(ts)
    return None


def _record_row(org_id: str, agent_id: str, record: Mapping[str, Any], received: int) -> dict[str, Any]:
    ts, tool, effect = record.get("ts"), record.get("tool"), record.get("effect")
    return {
        "org_id": org_id,
        "agent_id": agent_id,
        "seq": record["seq"],
        "hash": record["hash"],
        "kind": record["kind"],
        "ts": _timestamp(ts),
        "tool": tool[:200] if isinstance(tool, str) else None,
        "effect": effect if effect in _EFFECTS else None,
        "nonce": record["nonce"],
        "raw": json_text(record),
        "received_ns": received,
    }


def _quarantine_row(
    org_id: str, agent_id: str | None, public_key: str, record: Any, result: Mapping[str, Any], received: int
) -> dict[str, Any]:
    claimed = record.get("hash") if isinstance(record, Mapping) else None
    return {
        "org_id": org_id,
        "agent_id": agent_id,
        "public_key": public_key,
        "seq": result["seq"],
        "hash": claimed[:200] if isinstance(claimed, str) else None,
        "code": result["code"],
        "reason": result["reason"],
        "raw": json_text(record),
        "received_ns": received,
    }


async def _load_chain(db: Database, org_id: str, agent_id: str) -> AgentChain:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(Agent.public_key, Agent.head_seq, Agent.head_hash).where(
                    Agent.id == agent_id, Agent.org_id == org_id
                )
            )
        ).one()
    return AgentChain(agent_id, row.public_key, row.head_seq, row.head_hash)


async def _lookups(
    db: Database, chain: AgentChain, records: Sequence[Mapping[str, Any]]
) -> tuple[dict[int, str], frozenset[str]]:
    old = sorted({s for r in records if (s := _seq_of(r)) is not None and 0 < s <= chain.seq})
    nonces = sorted({n for r in records if isinstance(n := r.get("nonce"), str) and len(n) <= _MAX_NONCE})
    stored: dict[int, str] = {}
    used: set[str] = set()
    async with db.read() as conn:
        if old:
            rows = await conn.execute(
                select(Record.seq, Record.hash).where(Record.agent_id == chain.agent_id, Record.seq.in_(old))
            )
            stored = {row.seq: row.hash for row in rows}
        if nonces:
            rows = await conn.execute(
                select(Record.nonce).where(Record.agent_id == chain.agent_id, Record.nonce.in_(nonces))
            )
            used = {row.nonce for row in rows}
    return stored, frozenset(used)


class _HeadMoved(Exception):
    """Another request stored records of this agent since its head was read."""


async def ingest(
    db: Database,
    pool: Executor,
    threads: int,
    *,
    org_id: str,
    agent_id: str | None,
    signer: str,
    records: Sequence[Any],
) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    """Decide and store a batch; returns per-record results and the agent's head afterwards.

    `agent_id` None: the signing key belongs to no agent, unless the batch rotates a registered agent's key to it.
    """
    if agent_id is None:
        agent_id = await _rotating_agent(db, org_id, signer, records)
    if agent_id is None:
        reason = "no agent of this organisation holds the key that signed the batch: register it first"
        results = [
            {
                "seq": _seq_of(r) if isinstance(r, Mapping) else None,
                "status": "refused",
                "code": "unknown_agent",
                "reason": reason,
            }
            for r in records
        ]
        received = now_ns()
        rows = [
            _quarantine_row(org_id, None, signer, r, res, received) for r, res in zip(records, results, strict=True)
        ]
        if rows:
            async with db.write() as conn:
                await conn.execute(insert(Quarantine), rows)
        return results, (0, GENESIS)
    for _ in range(_ATTEMPTS):
        try:
            return await _attempt(db, pool, threads, org_id, agent_id, signer, records)
        except _HeadMoved:
            continue
    raise ApiError(409, "busy", "this agent's chain is being written by other requests; retry the batch")


async def _attempt(
    db: Database,
    pool: Executor,
    threads: int,
    org_id: str,
    agent_id: str,
    signer: str,
    records: Sequence[Any],
) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    chain = await _load_chain(db, org_id, agent_id)
    stored_hashes, used_nonces = await _lookups(db, chain, records)
    decided: Decided | None = None
    if records and _clean_run(records, chain, used_nonces):
        decided = await _decide_fast(records, chain, pool, threads)
    if decided is None:
        loop = asyncio.get_running_loop()
        decided = await loop.run_in_executor(pool, decide, records, chain, stored_hashes, used_nonces)
    if signer not in decided.keys and signer not in await _agent_keys(db, org_id, agent_id):
        # Signed by a key the chain never rotated to: nothing in this batch is the agent's.
        reason = "the batch is signed by a key this agent never rotated to"
        decided = Decided(
            [{"seq": _seq_of(r), "status": "refused", "code": "unknown_agent", "reason": reason} for r in records],
            [],
            list(range(len(records))),
            chain.seq,
            chain.head,
            [chain.key],
        )
    received = now_ns()
    try:
        async with db.write() as conn:
            if decided.stored:
                moved = await conn.execute(
                    update(Agent)
                    .where(Agent.id == agent_id, Agent.head_seq == chain.seq, Agent.head_hash == chain.head)
                    .values(head_seq=decided.seq, head_hash=decided.head, public_key=decided.keys[-1])
                )
                if moved.rowcount != 1:
                    raise _HeadMoved
                await conn.execute(
                    insert(Record), [_record_row(org_id, agent_id, records[i], received) for i in decided.stored]
                )
                for old, new in zip(decided.keys, decided.keys[1:], strict=False):
                    await conn.execute(
                        update(AgentKey)
                        .where(AgentKey.agent_id == agent_id, AgentKey.public_key == old)
                        .values(retired_ns=received)
                    )
                    await conn.execute(
                        insert(AgentKey).values(org_id=org_id, agent_id=agent_id, public_key=new, added_ns=received)
                    )
            if decided.refused:
                rows = [
                    _quarantine_row(org_id, agent_id, signer, records[i], decided.results[i], received)
                    for i in decided.refused
                ]
                await conn.execute(insert(Quarantine), rows)
    except IntegrityError:
        raise _HeadMoved from None
    return decided.results, (decided.seq, decided.head)


async def _agent_keys(db: Database, org_id: str, agent_id: str) -> set[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(AgentKey.public_key).where(AgentKey.org_id == org_id, AgentKey.agent_id == agent_id)
        )
        return {row.public_key for row in rows}


async def _rotating_agent(db: Database, org_id: str, signer: str, records: Sequence[Any]) -> str | None:
    """The registered agent whose key this batch rotates to `signer`, if any (verified later, by the chain)."""
    old_keys = {
        r["key"]
        for r in records
        if isinstance(r, Mapping)
        and r.get("kind") == "key_rotation"
        and r.get("new_key") == signer
        and isinstance(r.get("key"), str)
    }
    if not old_keys:
        return None
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(Agent.id)
                .join(AgentKey, AgentKey.agent_id == Agent.id)
                .where(
                    AgentKey.org_id == org_id, AgentKey.public_key.in_(sorted(old_keys)), Agent.disabled_ns.is_(None)
                )
            )
        ).first()
    return None if row is None else str(row.id)
