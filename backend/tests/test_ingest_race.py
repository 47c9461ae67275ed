"""Ingest against a real database when another request stores the same records between ingest's reads.

`_load` reads the agent's head, then the used nonces, without one snapshot. A resend racing the first send can
see the head from before the first send committed and the nonces from after: every record looks like a reused
nonce. Those refusals must not be stored; the batch is decided again and its records are duplicates.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import insert, select

from hashed.ledger import GENESIS
from hashed_backend.db.migrate import upgrade
from hashed_backend.db.models import Agent, AgentKey, Org, Quarantine
from hashed_backend.db.session import Database
from hashed_backend.services import ingest as ingest_service
from hashed_backend.settings import async_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_database")
    return f"sqlite:///{tmp_path / 'race.db'}"


async def register(db: Database, key: str) -> tuple[str, str]:
    org_id, agent_id = f"org_{uuid.uuid4().hex}", f"agt_{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(insert(Org).values(id=org_id, name="race", created_ns=1))
        await conn.execute(
            insert(Agent).values(
                id=agent_id, org_id=org_id, name="racer", public_key=key, head_seq=0, head_hash=GENESIS, created_ns=1
            )
        )
        await conn.execute(insert(AgentKey).values(org_id=org_id, agent_id=agent_id, public_key=key, added_ns=1))
    return org_id, agent_id


def test_a_resend_that_read_the_head_before_the_first_send_committed_is_all_duplicates(
    database_url, make_ledger, monkeypatch
):
    ledger = make_ledger("racer")
    ledger.activity(6)
    records = ledger.records()
    key = ledger.identity.public_key
    real_load = ingest_service._load
    stale = []

    async def head_read_before_the_first_send(db, org_id, agent_id, batch, *, nonces, head):
        chain, stored, used = await real_load(db, org_id, agent_id, batch, nonces=nonces, head=head)
        if nonces and not stale:  # the retry that reads nonces: its head read came before the other commit
            stale.append(chain.seq)
            return ingest_service.AgentChain(agent_id, chain.key, 0, GENESIS), {}, used
        return chain, stored, used

    async def scenario():
        db = Database(async_url(database_url))
        try:
            await upgrade(db)
            org_id, agent_id = await register(db, key)
            with ThreadPoolExecutor(2) as pool:
                first, head = await ingest_service.ingest(
                    db, pool, 2, org_id=org_id, agent_id=agent_id, signer=key, records=records
                )
                assert {r["status"] for r in first} == {"stored"} and head[0] == len(records)
                monkeypatch.setattr(ingest_service, "_load", head_read_before_the_first_send)
                # The resend's caller read the head before the first send moved it.
                again, head = await ingest_service.ingest(
                    db,
                    pool,
                    2,
                    org_id=org_id,
                    agent_id=agent_id,
                    signer=key,
                    records=records,
                    head=(key, 0, GENESIS),
                )
            async with db.read() as conn:
                quarantined = (await conn.execute(select(Quarantine.seq).where(Quarantine.agent_id == agent_id))).all()
            return again, head, quarantined
        finally:
            await db.dispose()

    again, head, quarantined = asyncio.run(scenario())
    assert stale == [len(records)]  # the interleaving happened
    assert [r["status"] for r in again] == ["duplicate"] * len(records)
    assert head == (len(records), records[-1]["hash"])
    assert quarantined == []
