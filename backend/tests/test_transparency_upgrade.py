"""Upgrading a backend that already holds records: migration 0002 builds each agent's tree, ingest extends it.

The database is brought back to 0001 (the tree's tables dropped) after real records were shipped, as a store
from before the tree would be; the next start migrates, and the tree it built must be the records' tree.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from alembic import command

from hashed.protocol import MemoryNodeStore, registration_message, signed_headers
from hashed_backend.db import migrate
from hashed_backend.db.session import Database
from hashed_backend.settings import BackendSettings
from hashed_backend.testing import LocalBackend


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    return request.getfixturevalue("throwaway_pg") if request.param == "postgresql" else None


def downgrade_to_0001(settings: BackendSettings) -> None:
    async def run() -> None:
        db = Database(settings.sqlalchemy_url)
        config = migrate._config()

        def down(sync_conn) -> None:
            config.attributes["connection"] = sync_conn
            command.downgrade(config, "0001")

        try:
            async with db.write_engine.connect() as conn:
                await conn.run_sync(down)
                await conn.commit()
        finally:
            await db.dispose()

    asyncio.run(run())


def register(url: str, agent_key: str, identity, name: str) -> str:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {agent_key}"}, timeout=30) as plain:
        challenge = plain.post("/v1/agents/challenge", json={"name": name, "public_key": identity.public_key}).json()
        signature = identity.sign(registration_message(challenge["challenge"], name, identity.public_key)).hex()
        body = {
            "challenge_id": challenge["id"],
            "name": name,
            "public_key": identity.public_key,
            "signature": signature,
        }
        return str(plain.post("/v1/agents/register", json=body).json()["id"])


def ship(url: str, agent_key: str, identity, records) -> None:
    body = orjson.dumps({"records": records})
    headers = {
        "Authorization": f"Bearer {agent_key}",
        "Content-Type": "application/json",
        **signed_headers(identity, "POST", "/v1/logs/batch", body),
    }
    response = httpx.post(f"{url}/v1/logs/batch", content=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["results"]} == {"stored"}


def test_upgrade_builds_the_tree_of_records_stored_before_it(tmp_path, database_url, make_ledger):
    backend = LocalBackend(tmp_path / "backend", database_url=database_url)
    settings = (
        BackendSettings(database_url=database_url)
        if database_url
        else BackendSettings(data_dir=tmp_path / "backend" / "data")
    )
    ledger = make_ledger("old-bot")
    ledger.activity(30)
    records = ledger.records()
    with backend:
        org = backend.bootstrap()
        agent_key = org.create_key("agent", "fleet")
        agent_id = register(backend.url, agent_key, ledger.identity, "old-bot")
        ship(backend.url, agent_key, ledger.identity, records[:20])
    downgrade_to_0001(settings)  # a store from before the tree: records, no tree
    expected = MemoryNodeStore()
    expected.extend(bytes.fromhex(r["hash"]) for r in records[:20])
    with backend:  # starts at 0001: migrates, building the tree from the stored records
        head = org.call("GET", f"/v1/agents/{agent_id}/checkpoint")
        assert (head["size"], head["root"], head["note"]) == (20, expected.root().hex(), None)
        ship(backend.url, agent_key, ledger.identity, records[20:])
        expected.extend(bytes.fromhex(r["hash"]) for r in records[20:])
        head = org.call("GET", f"/v1/agents/{agent_id}/checkpoint")
        assert (head["size"], head["root"]) == (len(records), expected.root().hex())
        assert head["note"] is not None
