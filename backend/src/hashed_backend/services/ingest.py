"""Log ingest: decide a batch of one agent's records against its stored chain (`ingest_decide.py`), then store it.

Nothing a signed record may contain stops ingest: text a database cannot store (a NUL in PostgreSQL, a lone
surrogate anywhere) never reaches a column as such. `raw` is JSON, which escapes both; the few text columns
copied out of a record (`tool`, a quarantined record's claimed `hash`, reasons) are escaped the same way.

At most one read (the agent's head, unless the caller's authentication read it already; the stored hashes
only of records at or below it) and one write transaction per batch. The head moves with a conditional
UPDATE (`WHERE head_seq = <read> AND head_hash = <read>`), and the records go in with one bulk insert,
whose unique (agent, nonce) index is the nonce check of a first attempt. If another replica moved the head
first, or a nonce was used after all, nothing is kept and the batch is decided again against what is
stored then, reading the used nonces this time; so is a batch with a refused record before anything is
written, since a used nonce would have been that record's refusal.

Refused records go to the quarantine table with their code and reason, never to `records`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from hashed.protocol import GENESIS
from hashed_backend.credentials import now_ns
from hashed_backend.db.models import Agent, AgentKey, Quarantine, Record
from hashed_backend.db.session import Database, bulk_insert, execute_all
from hashed_backend.errors import ApiError
from hashed_backend.jsontext import json_text, storable_text
from hashed_backend.services.checkpoints import BackendSigner
from hashed_backend.services.ingest_decide import INT64, AgentChain, Decided, decide_verified, seq_of
from hashed_backend.services.tree import TreeState, TreeStep, known, plan_ahead, plan_tree, remember, tree_after

__all__ = ["ingest"]

_log = logging.getLogger("hashed_backend")
_NONCE = re.compile("[0-9a-f]{32}")
_EFFECTS = frozenset({"allow", "deny", "pending"})
_ATTEMPTS = 6  # the first may only show that the used nonces must be read
_BEFORE_NONCES = frozenset({"conflict", "nonce_reused"})  # refusals `decide` makes before the used-nonce check

# Built once: the hot statements skip construction and reuse their compiled form.
_AGENTS, _RECORDS = cast(Table, Agent.__table__), cast(Table, Record.__table__)
_CHAIN = select(_AGENTS.c.public_key, _AGENTS.c.head_seq, _AGENTS.c.head_hash).where(
    _AGENTS.c.id == bindparam("agent_id"), _AGENTS.c.org_id == bindparam("org_id")
)
_STORED = select(_RECORDS.c.seq, _RECORDS.c.raw).where(
    _RECORDS.c.agent_id == bindparam("agent_id"), _RECORDS.c.seq.in_(bindparam("seqs", expanding=True))
)
_USED = select(_RECORDS.c.nonce).where(
    _RECORDS.c.agent_id == bindparam("agent_id"), _RECORDS.c.nonce.in_(bindparam("nonces", expanding=True))
)
_MOVE_HEAD = (
    update(_AGENTS)
    .where(
        _AGENTS.c.id == bindparam("agent_id"),
        _AGENTS.c.head_seq == bindparam("old_seq"),
        _AGENTS.c.head_hash == bindparam("old_head"),
    )
    .values(head_seq=bindparam("new_seq"), head_hash=bindparam("new_head"), public_key=bindparam("new_key"))
)
_QUARANTINE = cast(Table, Quarantine.__table__)


def _timestamp(ts: Any) -> int | None:
    """The record's `ts` (nanoseconds, a decimal string) as an integer column value, when it is one."""
    if isinstance(ts, str) and ts.isascii() and ts.isdigit() and len(ts) <= 19 and int(ts) <= INT64:
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
        "tool": storable_text(tool[:200]) if isinstance(tool, str) else None,
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
        "hash": storable_text(claimed[:200]) if isinstance(claimed, str) else None,
        "code": result["code"],
        "reason": storable_text(result["reason"]),
        "raw": json_text(record),
        "received_ns": received,
    }


async def _load(
    db: Database,
    org_id: str,
    agent_id: str,
    records: Sequence[Mapping[str, Any]],
    *,
    nonces: bool,
    head: tuple[str, int, str] | None,
) -> tuple[AgentChain, dict[int, Any], frozenset[str]]:
    """The agent's chain, the stored records at or below its head that the batch names, and the used nonces.

    `head`: the agent's key and head as just read; when nothing else is needed, the database is not read.
    """
    if head is not None and not nonces:
        chain = AgentChain(agent_id, *head)
        if not any((s := seq_of(r)) is not None and 0 < s <= chain.seq for r in records):
            return chain, {}, frozenset()
    stored: dict[int, Any] = {}
    used: frozenset[str] = frozenset()
    # No snapshot needed: stored records never change, and a nonce used meanwhile fails the insert (then retried);
    # a batch with nothing to insert checks in `_store` that the head it was decided against still stands.
    async with db.read(snapshot=False) as conn:
        row = (await conn.execute(_CHAIN, {"agent_id": agent_id, "org_id": org_id})).one()
        chain = AgentChain(agent_id, row.public_key, row.head_seq, row.head_hash)
        old = sorted({s for r in records if (s := seq_of(r)) is not None and 0 < s <= chain.seq})
        if old:
            rows = await conn.execute(_STORED, {"agent_id": agent_id, "seqs": old})
            stored = {row.seq: orjson.loads(row.raw) for row in rows}
        wanted = sorted({n for r in records if isinstance(n := r.get("nonce"), str) and _NONCE.fullmatch(n)})
        if nonces and wanted:
            rows = await conn.execute(_USED, {"agent_id": agent_id, "nonces": wanted})
            used = frozenset(row.nonce for row in rows)
    return chain, stored, used


def _quarantine(conn: Connection, rows: list[dict[str, Any]]) -> None:
    bulk_insert(conn, _QUARANTINE, rows)


class _Again(Exception):
    """Decide the batch again, reading the used nonces.

    The head moved since it was read, a nonce was used after all, or a refused record's refusal might have
    been `nonce_reused` (`decide` checks nonces before the verifier does).
    """


async def ingest(
    db: Database,
    pool: Executor,
    threads: int,
    *,
    org_id: str,
    agent_id: str | None,
    signer: str,
    records: Sequence[Any],
    head: tuple[str, int, str] | None = None,
    backend: BackendSigner | None = None,
) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    """Decide and store a batch; returns per-record results and the agent's head afterwards.

    The stored records extend the agent's Merkle tree in the same transaction, and `backend` (the backend's key)
    signs a checkpoint of it (`services/tree.py`).

    `agent_id` None: the signing key belongs to no agent, unless the batch rotates a registered agent's key to it.
    `head`: the agent's key and verified head (seq, hash) if just read (`Caller.agent_head`): the first attempt
    starts from it; a head moved since fails the conditional UPDATE, and the batch is decided again.
    """
    if agent_id is None:
        agent_id = await _rotating_agent(db, org_id, signer, records)
    if agent_id is None:
        reason = "no agent of this organisation holds the key that signed the batch: register it first"
        results = [
            {
                "seq": seq_of(r) if isinstance(r, Mapping) else None,
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
            await db.run_write(_quarantine, rows)
        return results, (0, GENESIS)
    nonces = False  # first attempt: the unique (agent, nonce) index checks the nonces as the records go in
    for _ in range(_ATTEMPTS):
        try:
            return await _attempt(
                db, pool, threads, org_id, agent_id, signer, records, nonces=nonces, head=head, backend=backend
            )
        except _Again:
            nonces, head = True, None
    raise ApiError(409, "busy", "this agent's chain is being written by other requests; retry the batch")


async def _attempt(
    db: Database,
    pool: Executor,
    threads: int,
    org_id: str,
    agent_id: str,
    signer: str,
    records: Sequence[Any],
    *,
    nonces: bool,
    head: tuple[str, int, str] | None,
    backend: BackendSigner | None,
) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    chain, stored, used_nonces = await _load(db, org_id, agent_id, records, nonces=nonces, head=head)
    decided = await decide_verified(records, chain, stored, used_nonces, pool, threads)
    if signer not in decided.keys and signer not in await _agent_keys(db, org_id, agent_id):
        # Signed by a key the chain never rotated to: nothing in this batch is the agent's.
        reason = "the batch is signed by a key this agent never rotated to"
        decided = Decided(
            [{"seq": seq_of(r), "status": "refused", "code": "unknown_agent", "reason": reason} for r in records],
            [],
            list(range(len(records))),
            chain.seq,
            chain.head,
            [chain.key],
        )
    elif not nonces and any(r["code"] not in _BEFORE_NONCES for r in decided.results if r["status"] == "refused"):
        raise _Again  # rare (a refused record): its nonce, if used, is its refusal, so look them up
    received = now_ns()
    rows = [_record_row(org_id, agent_id, records[i], received) for i in decided.stored]
    refused = [
        _quarantine_row(org_id, agent_id, signer, records[i], decided.results[i], received) for i in decided.refused
    ]
    state = known(db, agent_id)
    ahead = plan_ahead(org_id, agent_id, chain.seq, rows, backend, received, state)  # off the writer thread
    try:
        state = await db.run_write(
            _store, org_id, agent_id, chain, decided, rows, refused, received, backend, state, ahead
        )
    except IntegrityError:
        raise _Again from None
    remember(db, agent_id, state)
    conflicts = [r["seq"] for r in decided.results if r["code"] == "conflict"]
    if conflicts:
        _log.warning(
            "agent %s sent records that differ from the stored ones at seq %s: quarantined",
            agent_id,
            ", ".join(map(str, conflicts[:10])),
            extra={"org_id": org_id, "agent_id": agent_id, "conflicts": len(conflicts)},
        )
    return decided.results, (decided.seq, decided.head)


def _store(
    conn: Connection,
    org_id: str,
    agent_id: str,
    chain: AgentChain,
    decided: Decided,
    rows: list[dict[str, Any]],
    refused: list[dict[str, Any]],
    received: int,
    backend: BackendSigner | None = None,
    state: TreeState | None = None,
    ahead: TreeStep | None = None,
) -> TreeState | None:
    """The batch's one write transaction (on the database's writer thread): head, records, tree, keys, quarantine.

    `state`: the agent's tree as this process last committed it; returns the tree after the batch. `ahead`: the
    tree's step, planned from `state` before the transaction (`plan_ahead`); None: planned here.

    The head moves only if it is still the one the batch was decided against. A batch of refusals alone leaves it
    where it was, through the same conditional UPDATE: if another request stored records since, the nonces `_load`
    read after the head may be those very records' (a resend racing the first send), and the batch is decided again.
    """
    if not rows and not refused:
        return state
    seq, head, key = (decided.seq, decided.head, decided.keys[-1]) if rows else (chain.seq, chain.head, chain.key)
    move = {
        "agent_id": agent_id,
        "old_seq": chain.seq,
        "old_head": chain.head,
        "new_seq": seq,
        "new_head": head,
        "new_key": key,
    }
    step = None
    if rows:  # stored before the head moves: a record stored meanwhile at the same seq fails the insert (retried)
        bulk_insert(conn, _RECORDS, rows)
        step = (
            ahead
            if ahead is not None
            else plan_tree(conn, org_id, agent_id, chain.seq, chain.key, rows, backend, received, state)
        )
    counts = execute_all(conn, [(_MOVE_HEAD, move), *(step.steps if step else ())])  # one round trip (PostgreSQL)
    if counts[0] != 1:
        raise _Again
    if rows:
        state = tree_after(step, counts[1:], agent_id)
        for old, new in zip(decided.keys, decided.keys[1:], strict=False):
            conn.execute(
                update(AgentKey)
                .where(AgentKey.agent_id == agent_id, AgentKey.public_key == old)
                .values(retired_ns=received)
            )
            conn.execute(insert(AgentKey).values(org_id=org_id, agent_id=agent_id, public_key=new, added_ns=received))
    bulk_insert(conn, _QUARANTINE, refused)
    return state


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
