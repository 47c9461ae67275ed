"""Upgrading a backend that already holds records: migration 0002 builds each agent's tree, ingest extends it.

The database is brought back to 0001 (the tree's tables dropped) after real records were shipped, as a store
from before the tree would be; the next start migrates, and the tree it built must be the records' tree, every
record provable in it. Migration 0004 moves the tree from one row per node to tiles: brought back to 0003 and
up again, every proof still verifies.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from alembic import command

from hashed.protocol import (
    MemoryNodeStore,
    registration_message,
    signed_headers,
    verify_consistency,
    verify_inclusion,
)
from hashed_backend.db import migrate
from hashed_backend.db.session import Database
from hashed_backend.settings import BackendSettings
from hashed_backend.testing import LocalBackend


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    return request.getfixturevalue("throwaway_pg") if request.param == "postgresql" else None


def backend_at(tmp_path, database_url: str | None) -> tuple[LocalBackend, BackendSettings]:
    """A backend process to start and stop, and the settings that reach its database while it is stopped."""
    backend = LocalBackend(tmp_path / "backend", database_url=database_url)
    if database_url:
        return backend, BackendSettings(database_url=database_url)
    return backend, BackendSettings(data_dir=tmp_path / "backend" / "data")


def downgrade_to(settings: BackendSettings, revision: str) -> None:
    async def run() -> None:
        db = Database(settings.sqlalchemy_url)
        config = migrate._config()

        def down(sync_conn) -> None:
            config.attributes["connection"] = sync_conn
            command.downgrade(config, revision)

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
    backend, settings = backend_at(tmp_path, database_url)
    ledger = make_ledger("old-bot")
    ledger.activity(30)
    records = ledger.records()
    with backend:
        org = backend.bootstrap()
        agent_key = org.create_key("agent", "fleet")
        agent_id = register(backend.url, agent_key, ledger.identity, "old-bot")
        ship(backend.url, agent_key, ledger.identity, records[:20])
    downgrade_to(settings, "0001")  # a store from before the tree: records, no tree
    expected = MemoryNodeStore()
    expected.extend(bytes.fromhex(r["hash"]) for r in records[:20])
    with backend:  # starts at 0001: migrates, building the tree from the stored records
        head = org.call("GET", f"/v1/agents/{agent_id}/checkpoint")
        assert (head["size"], head["root"], head["note"]) == (20, expected.root().hex(), None)
        assert_provable(org, agent_id, records[:20], 20, expected.root())
        ship(backend.url, agent_key, ledger.identity, records[20:])
        expected.extend(bytes.fromhex(r["hash"]) for r in records[20:])
        head = org.call("GET", f"/v1/agents/{agent_id}/checkpoint")
        assert (head["size"], head["root"]) == (len(records), expected.root().hex())
        assert head["note"] is not None


def assert_provable(org, agent_id: str, records, size: int, root: bytes) -> None:
    """Every record's inclusion proof at `size`, and every consistency proof into `size`, verify against `root`."""
    for record in records[:size]:
        proof = org.call("GET", f"/v1/agents/{agent_id}/proof/inclusion", seq=record["seq"], size=size)
        hashes = [bytes.fromhex(p) for p in proof["proof"]]
        verify_inclusion(bytes.fromhex(record["hash"]), record["seq"] - 1, size, hashes, root)
    tree = MemoryNodeStore()
    for old in range(1, size):
        tree.extend([bytes.fromhex(records[old - 1]["hash"])])
        proof = org.call("GET", f"/v1/agents/{agent_id}/proof/consistency", old=old, new=size)
        verify_consistency(old, size, tree.root(), root, [bytes.fromhex(p) for p in proof["proof"]])


def test_the_tree_moves_to_tiles_and_back_with_every_proof_intact(tmp_path, database_url, make_ledger):
    backend, settings = backend_at(tmp_path, database_url)
    ledger = make_ledger("tiled-bot")
    ledger.activity(40)
    records = ledger.records()
    assert len(records) >= 70  # tiles of levels 0 and 4 (16 leaves each), full and partial
    expected = MemoryNodeStore()
    expected.extend(bytes.fromhex(r["hash"]) for r in records[:67])
    with backend:
        org = backend.bootstrap()
        agent_key = org.create_key("agent", "fleet")
        agent_id = register(backend.url, agent_key, ledger.identity, "tiled-bot")
        for start, end in ((0, 7), (7, 20), (20, 53), (53, 67)):  # batches that end inside tiles
            ship(backend.url, agent_key, ledger.identity, records[start:end])
        assert_provable(org, agent_id, records, 67, expected.root())
    downgrade_to(settings, "0003")  # one row per node again, computed from the tiles
    with backend:  # and back to tiles
        assert org.call("GET", f"/v1/agents/{agent_id}/checkpoint")["root"] == expected.root().hex()
        assert_provable(org, agent_id, records, 67, expected.root())
        ship(backend.url, agent_key, ledger.identity, records[67:])  # the partial tiles grow on
        expected.extend(bytes.fromhex(r["hash"]) for r in records[67:])
        assert_provable(org, agent_id, records, len(records), expected.root())
