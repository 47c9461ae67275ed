"""Transparency: an agent's checkpoints, and inclusion and consistency proofs from its Merkle tree.

Every proof is read from the stored complete subtrees (O(log n) nodes, one query) for any size the tree has
reached, and comes with a checkpoint signed at that size: the one the agent signed and the backend cosigned when
there is one, else the backend's own (signed on the spot for an older size: its tree had that root then).
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import Connection, select
from starlette.responses import Response

from hashed.protocol import Checkpoint, consistency_proof, inclusion_proof, root_at
from hashed_backend.credentials import iso, now_ns
from hashed_backend.db.models import Agent, CheckpointNote, Record, Tree
from hashed_backend.deps import AdminOrAgent, Caller, State
from hashed_backend.deps import Agent as AgentCaller
from hashed_backend.errors import ApiError
from hashed_backend.schemas.common import Hex64
from hashed_backend.schemas.transparency import (
    AgentCheckpoint,
    CheckpointIn,
    CheckpointOut,
    ConsistencyOut,
    InclusionOut,
    ReceivedOut,
)
from hashed_backend.services.checkpoints import BackendSigner, receive_checkpoint
from hashed_backend.services.tree import SqlNodeStore, unpack

router = APIRouter(tags=["transparency"])
Size = Annotated[int | None, Query(ge=1, le=2**62, description="Tree size (default: the latest).")]


@router.post("/v1/logs/checkpoint", response_model=ReceivedOut)
async def send_checkpoint(body: CheckpointIn, caller: AgentCaller, state: State) -> dict[str, Any]:
    """Take a checkpoint the agent signed: cosigned if its root is the backend's at that size.

    409 `checkpoint_ahead`: the backend holds fewer records than it covers (send it again later); 409 `forked`:
    another root at that size (kept as evidence, never cosigned); 422: not this agent's log or signature.
    """
    return await receive_checkpoint(
        state.db, state.checkpoint_signer, org_id=caller.org_id, agent_id=caller.id, note=body.note, now=now_ns()
    )


def _tree(conn: Connection, caller: Caller, agent_id: str) -> Any:
    """The agent's tree row, within the caller's organisation (an agent sees only its own log)."""
    if caller.kind == "agent" and caller.id != agent_id:
        raise ApiError(404, "agent_not_found", f"no agent {agent_id} in this organisation")
    found = conn.execute(select(Agent.id).where(Agent.id == agent_id, Agent.org_id == caller.org_id)).first()
    if found is None:
        raise ApiError(404, "agent_not_found", f"no agent {agent_id} in this organisation")
    tree = conn.execute(select(Tree).where(Tree.agent_id == agent_id)).first()
    if tree is None:
        raise ApiError(404, "no_tree", f"agent {agent_id} has no records in a Merkle tree yet")
    return tree


def _size(tree: Any, size: int | None) -> int:
    if size is None:
        return int(tree.size)
    if size > tree.size:
        raise ApiError(404, "beyond_tree", f"the tree holds {tree.size} records, not {size}")
    return size


def _note_at(conn: Connection, signer: BackendSigner, tree: Any, size: int, root: bytes) -> str:
    """A checkpoint at `size`: the agent's (cosigned) if it sent one, else the backend's."""
    cosigned = conn.execute(
        select(CheckpointNote.note)
        .where(CheckpointNote.agent_id == tree.agent_id, CheckpointNote.size == size)
        .where(CheckpointNote.status == "cosigned")
        .order_by(CheckpointNote.id.desc())
        .limit(1)
    ).scalar()
    if cosigned is not None:
        return str(cosigned)
    if size == tree.size and tree.note is not None:
        return str(tree.note)
    return signer.sign_checkpoint(Checkpoint(tree.origin, size, root))


def _agent_checkpoint(row: Any) -> AgentCheckpoint:
    return AgentCheckpoint(
        size=row.size,
        root=row.root,
        status=row.status,
        reason=row.reason,
        note=row.note,
        received_at=iso(row.received_ns),
    )


@router.get("/v1/agents/{agent_id}/checkpoint", response_model=CheckpointOut)
async def checkpoint(agent_id: str, caller: AdminOrAgent, state: State) -> CheckpointOut:
    """The backend's latest signed checkpoint of the agent's log, the latest the agent sent, and any forks."""

    def read(conn: Connection) -> CheckpointOut:
        tree = _tree(conn, caller, agent_id)
        rows = conn.execute(
            select(CheckpointNote).where(CheckpointNote.agent_id == agent_id).order_by(CheckpointNote.id.desc())
        ).all()
        cosigned = max((r for r in rows if r.status == "cosigned"), key=lambda r: r.size, default=None)
        return CheckpointOut(
            origin=tree.origin,
            size=tree.size,
            root=unpack(tree.size, tree.compact).root().hex(),
            note=tree.note,
            backend_key=state.checkpoint_signer.verifier.vkey,
            agent=None if cosigned is None else _agent_checkpoint(cosigned),
            forked=[_agent_checkpoint(r) for r in rows if r.status == "forked"][:20],
        )

    async with state.db.read() as conn:
        return await conn.run_sync(read)


def _b64(hashes: list[bytes]) -> str:
    return "".join(base64.b64encode(h).decode() + "\n" for h in hashes)


@router.get("/v1/agents/{agent_id}/proof/inclusion", response_model=InclusionOut, response_model_exclude_none=True)
async def inclusion(
    agent_id: str,
    caller: AdminOrAgent,
    state: State,
    seq: Annotated[int | None, Query(ge=1, le=2**62, description="The record's seq.")] = None,
    hash: Annotated[Hex64 | None, Query(description="The record's hash (looked up among stored records).")] = None,
    size: Size = None,
    format: Annotated[str, Query(pattern="^(json|tlog-proof)$", description="`tlog-proof`: the text alone.")] = "json",
) -> Any:
    """Proof that a record (by seq, or by hash) is in the tree at `size`, with a signed checkpoint at that size."""
    if seq is None and hash is None:
        raise ApiError(422, "invalid_request", "pass seq or hash")

    def read(conn: Connection) -> InclusionOut:
        tree = _tree(conn, caller, agent_id)
        at = _size(tree, size)
        wanted = seq
        if hash is not None:
            query = select(Record.seq).where(Record.agent_id == agent_id, Record.hash == hash)
            found = conn.execute(query if seq is None else query.where(Record.seq == seq)).scalar()
            if found is None:
                raise ApiError(404, "record_not_found", f"no stored record of agent {agent_id} has hash {hash}")
            wanted = int(found)
        assert wanted is not None  # noqa: S101 - one of seq and hash was given
        if wanted > at:
            raise ApiError(404, "beyond_tree", f"record {wanted} is not in the tree of size {at}")
        store = SqlNodeStore(conn, agent_id)
        [leaf] = store.get_nodes([(0, wanted - 1)])
        proof, root = inclusion_proof(store, wanted - 1, at), root_at(store, at)
        note = _note_at(conn, state.checkpoint_signer, tree, at, root)
        return InclusionOut(
            seq=wanted,
            index=wanted - 1,
            size=at,
            leaf=leaf.hex(),
            root=root.hex(),
            proof=[p.hex() for p in proof],
            checkpoint=note,
            tlog_proof=f"c2sp.org/tlog-proof@v1\nindex {wanted - 1}\n{_b64(proof)}\n{note}",
        )

    async with state.db.read() as conn:
        out = await conn.run_sync(read)
    if format == "tlog-proof":
        return Response(out.tlog_proof, media_type="text/plain; charset=utf-8")
    return out


@router.get("/v1/agents/{agent_id}/proof/consistency", response_model=ConsistencyOut)
async def consistency(
    agent_id: str,
    caller: AdminOrAgent,
    state: State,
    old: Annotated[int, Query(ge=1, le=2**62, description="The earlier tree size.")],
    new: Size = None,
) -> ConsistencyOut:
    """Proof that the tree at `old` is a prefix of the tree at `new`, with signed checkpoints at both sizes."""

    def read(conn: Connection) -> ConsistencyOut:
        tree = _tree(conn, caller, agent_id)
        to = _size(tree, new)
        if old > to:
            raise ApiError(422, "invalid_request", f"old ({old}) is larger than new ({to}): a log never shrinks")
        store = SqlNodeStore(conn, agent_id)
        proof = consistency_proof(store, old, to)
        old_root, new_root = root_at(store, old), root_at(store, to)
        return ConsistencyOut(
            old=old,
            new=to,
            old_root=old_root.hex(),
            new_root=new_root.hex(),
            proof=[p.hex() for p in proof],
            old_checkpoint=_note_at(conn, state.checkpoint_signer, tree, old, old_root),
            new_checkpoint=_note_at(conn, state.checkpoint_signer, tree, to, new_root),
        )

    async with state.db.read() as conn:
        return await conn.run_sync(read)
