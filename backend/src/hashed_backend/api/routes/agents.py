"""Agents: registration by proof of key possession, listing, disabling, chain integrity."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import nacl.exceptions
import nacl.signing
import orjson
from fastapi import APIRouter, Query
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from hashed.errors import ChainBrokenError
from hashed.protocol import GENESIS, ChainVerifier, registration_message
from hashed_backend.credentials import iso, new_id, now_ns
from hashed_backend.db.models import Agent, AgentKey, Challenge, Quarantine, Record
from hashed_backend.deps import Admin, State, Writer
from hashed_backend.deps import AgentKey as AgentKeyCaller
from hashed_backend.errors import ApiError
from hashed_backend.schemas.agents import AgentOut, ChainOut, ChallengeIn, ChallengeOut, Gap, RegisterIn
from hashed_backend.schemas.common import Head

router = APIRouter(prefix="/v1/agents", tags=["agents"])
_CHALLENGE_NS = 300 * 1_000_000_000


def _view(row: Any) -> AgentOut:
    return AgentOut(
        id=row.id,
        name=row.name,
        public_key=row.public_key,
        created_at=iso(row.created_ns),
        disabled_at=iso(row.disabled_ns),
        head=Head(seq=row.head_seq, hash=row.head_hash),
    )


async def _get(state: State, org_id: str, agent_id: str) -> Any:
    async with state.db.read() as conn:
        row = (await conn.execute(select(Agent).where(Agent.id == agent_id, Agent.org_id == org_id))).first()
    if row is None:
        raise ApiError(404, "agent_not_found", f"no agent {agent_id} in this organisation")
    return row


@router.post("/challenge", status_code=201, response_model=ChallengeOut)
async def challenge(body: ChallengeIn, caller: AgentKeyCaller, state: State) -> ChallengeOut:
    """Step 1 of registration: a single-use challenge, valid for 5 minutes, bound to this name and key."""
    challenge_id, secret, expires = new_id("chl"), os.urandom(32).hex(), now_ns() + _CHALLENGE_NS
    async with state.db.write() as conn:
        await conn.execute(
            insert(Challenge).values(
                id=challenge_id,
                org_id=caller.org_id,
                public_key=body.public_key,
                name=body.name,
                challenge=secret,
                expires_ns=expires,
            )
        )
    return ChallengeOut(id=challenge_id, challenge=secret, expires_at=iso(expires))


@router.post("/register", status_code=201, response_model=AgentOut)
async def register(body: RegisterIn, caller: AgentKeyCaller, state: State, response: Response) -> AgentOut:
    """Step 2: the signature of `registration_message(challenge, name, public_key)` registers the agent.

    Registering the same name with the same key again answers 200 with the agent; a name or key that
    another registration holds answers 409.
    """
    now = now_ns()
    async with state.db.write() as conn:
        found = (
            await conn.execute(
                update(Challenge)
                .where(
                    Challenge.id == body.challenge_id,
                    Challenge.org_id == caller.org_id,
                    Challenge.used_ns.is_(None),
                    Challenge.expires_ns > now,
                )
                .values(used_ns=now)
                .returning(Challenge.challenge, Challenge.name, Challenge.public_key)
            )
        ).first()
    if found is None:
        raise ApiError(401, "challenge_invalid", "unknown, used or expired challenge: ask for a new one")
    if (found.name, found.public_key) != (body.name, body.public_key):
        raise ApiError(401, "challenge_invalid", "this challenge was issued for another name or key")
    try:
        nacl.signing.VerifyKey(bytes.fromhex(body.public_key)).verify(
            registration_message(found.challenge, body.name, body.public_key), bytes.fromhex(body.signature)
        )
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise ApiError(401, "signature_invalid", "the challenge signature does not verify with this key") from None
    agent_id = new_id("agt")
    try:
        async with state.db.write() as conn:
            await conn.execute(
                insert(Agent).values(
                    id=agent_id,
                    org_id=caller.org_id,
                    name=body.name,
                    public_key=body.public_key,
                    head_seq=0,
                    head_hash=GENESIS,
                    created_ns=now,
                )
            )
            await conn.execute(
                insert(AgentKey).values(
                    org_id=caller.org_id, agent_id=agent_id, public_key=body.public_key, added_ns=now
                )
            )
    except IntegrityError:
        async with state.db.read() as conn:
            same = (
                await conn.execute(
                    select(Agent).where(
                        Agent.org_id == caller.org_id, Agent.name == body.name, Agent.public_key == body.public_key
                    )
                )
            ).first()
        if same is None:
            raise ApiError(
                409, "agent_exists", "another agent here already has this name or key (rotate keys with a record)"
            ) from None
        response.status_code = 200
        return _view(same)
    return _view(await _get(state, caller.org_id, agent_id))


@router.get("", response_model=list[AgentOut])
async def list_agents(caller: Admin, state: State) -> list[AgentOut]:
    """Every agent of the organisation."""
    async with state.db.read() as conn:
        rows = await conn.execute(select(Agent).where(Agent.org_id == caller.org_id).order_by(Agent.name))
        return [_view(row) for row in rows]


@router.get("/{agent_id}", response_model=AgentOut)
async def get_agent(agent_id: str, caller: Admin, state: State) -> AgentOut:
    """One agent."""
    return _view(await _get(state, caller.org_id, agent_id))


@router.delete("/{agent_id}", response_model=AgentOut)
async def disable_agent(agent_id: str, caller: Writer, state: State) -> AgentOut:
    """Disable an agent: its requests are refused (403 `agent_disabled`); its records stay."""
    await _get(state, caller.org_id, agent_id)
    async with state.db.write() as conn:
        await conn.execute(
            update(Agent)
            .where(Agent.id == agent_id, Agent.org_id == caller.org_id, Agent.disabled_ns.is_(None))
            .values(disabled_ns=now_ns())
        )
    return _view(await _get(state, caller.org_id, agent_id))


def _reverify(raws: list[str], first_key: str) -> tuple[int, str | None]:
    verifier = ChainVerifier(key=first_key)
    try:
        for raw in raws:
            verifier.check(orjson.loads(raw))
    except ChainBrokenError as exc:
        return verifier.seq, str(exc)
    return verifier.seq, None


@router.get("/{agent_id}/chain", response_model=ChainOut)
async def chain(
    agent_id: str,
    caller: Admin,
    state: State,
    verify: bool = Query(default=False, description="Re-verify every stored record now (slow for long chains)."),
) -> ChainOut:
    """What is verified, what is missing, what was refused."""
    agent = await _get(state, caller.org_id, agent_id)
    async with state.db.read() as conn:
        count = (await conn.execute(select(func.count()).where(Record.agent_id == agent_id))).scalar_one()
        quarantined = (await conn.execute(select(func.count()).where(Quarantine.agent_id == agent_id))).scalar_one()
        ahead = (
            (
                await conn.execute(
                    select(Quarantine.seq)
                    .where(Quarantine.agent_id == agent_id, Quarantine.seq > agent.head_seq)
                    .distinct()
                    .order_by(Quarantine.seq)
                    .limit(1000)
                )
            )
            .scalars()
            .all()
        )
        keys = (
            (
                await conn.execute(
                    select(AgentKey.public_key)
                    .where(AgentKey.agent_id == agent_id)
                    .order_by(AgentKey.added_ns, AgentKey.id)
                )
            )
            .scalars()
            .all()
        )
        raws: list[str] = []
        if verify:
            raws = list(
                (
                    await conn.execute(select(Record.raw).where(Record.agent_id == agent_id).order_by(Record.seq))
                ).scalars()
            )
    gaps, expected = [], agent.head_seq + 1
    for seq in ahead:
        if seq is not None and seq > expected:
            gaps.append(Gap(first=expected, last=seq - 1))
        expected = (seq or 0) + 1
    verified, error = agent.head_seq, None
    if verify:
        verified, error = await asyncio.get_running_loop().run_in_executor(
            state.verify_pool, _reverify, raws, keys[0] if keys else agent.public_key
        )
    return ChainOut(
        agent_id=agent.id,
        name=agent.name,
        verified_seq=verified,
        head=Head(seq=agent.head_seq, hash=agent.head_hash),
        records=count,
        quarantined=quarantined,
        gaps=gaps,
        keys=list(keys),
        reverified=verify,
        error=error,
    )
