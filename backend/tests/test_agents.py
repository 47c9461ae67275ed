"""Agent registration by challenge (proof of key possession), listing, disabling."""

from __future__ import annotations

import httpx

from hashed import Identity
from hashed.shipping import registration_message


def code(response):
    return response.json()["error"]["code"]


def agent_key_client(org):
    return httpx.Client(
        base_url=org.server.url,
        timeout=30,
        headers={"Authorization": f"Bearer {org.agent_key}", "X-Forwarded-For": org.ip},
    )


def challenge(client, name, identity):
    response = client.post("/v1/agents/challenge", json={"name": name, "public_key": identity.public_key})
    assert response.status_code == 201, response.text
    return response.json()


def test_register_with_a_signed_challenge(org):
    identity = Identity.generate()
    info = org.register(identity, "support-bot")
    assert info["name"] == "support-bot" and info["public_key"] == identity.public_key
    assert info["head"] == {"seq": 0, "hash": "0" * 64}
    assert [a["id"] for a in org.admin.get("/v1/agents").json()] == [info["id"]]


def test_register_again_with_the_same_key_is_idempotent(org):
    identity = Identity.generate()
    first = org.register(identity, "support-bot")
    assert org.register(identity, "support-bot")["id"] == first["id"]


def test_register_refuses_a_wrong_signature_and_used_challenges(org):
    identity, thief = Identity.generate(), Identity.generate()
    with agent_key_client(org) as client:
        chl = challenge(client, "bot", identity)
        forged = thief.sign(registration_message(chl["challenge"], "bot", identity.public_key)).hex()
        body = {"challenge_id": chl["id"], "name": "bot", "public_key": identity.public_key, "signature": forged}
        response = client.post("/v1/agents/register", json=body)
        assert response.status_code == 401 and code(response) == "signature_invalid"
        good = identity.sign(registration_message(chl["challenge"], "bot", identity.public_key)).hex()
        reused = client.post("/v1/agents/register", json={**body, "signature": good})
        assert reused.status_code == 401 and code(reused) == "challenge_invalid"  # single use, even after a failure
    assert org.admin.get("/v1/agents").json() == []


def test_challenge_is_bound_to_its_name_and_key(org):
    identity = Identity.generate()
    with agent_key_client(org) as client:
        chl = challenge(client, "bot", identity)
        signature = identity.sign(registration_message(chl["challenge"], "other", identity.public_key)).hex()
        response = client.post(
            "/v1/agents/register",
            json={
                "challenge_id": chl["id"],
                "name": "other",
                "public_key": identity.public_key,
                "signature": signature,
            },
        )
    assert response.status_code == 401 and code(response) == "challenge_invalid"


def test_a_taken_name_is_409(org):
    org.register(Identity.generate(), "bot")
    identity = Identity.generate()
    with agent_key_client(org) as client:
        chl = challenge(client, "bot", identity)
        signature = identity.sign(registration_message(chl["challenge"], "bot", identity.public_key)).hex()
        response = client.post(
            "/v1/agents/register",
            json={"challenge_id": chl["id"], "name": "bot", "public_key": identity.public_key, "signature": signature},
        )
    assert response.status_code == 409 and code(response) == "agent_exists"


def test_registration_needs_an_agent_key(org):
    response = org.admin.post("/v1/agents/challenge", json={"name": "x", "public_key": "ab" * 32})
    assert response.status_code == 403 and code(response) == "forbidden"


def test_disable_keeps_records_and_shows_in_listing(org, make_agent):
    agent = make_agent(org, calls=3)
    agent.ship(agent.ledger.records())
    disabled = org.admin.delete(f"/v1/agents/{agent.id}")
    assert disabled.status_code == 200 and disabled.json()["disabled_at"]
    assert org.admin.get("/v1/logs", params={"agent": agent.id}).json()["items"]
    assert code(agent.ship([])) == "agent_disabled"


def test_chain_status_counts_and_reverifies(org, make_agent):
    agent = make_agent(org, calls=6)
    records = agent.ledger.records()
    agent.ship(records)
    chain = org.admin.get(f"/v1/agents/{agent.id}/chain", params={"verify": "true"}).json()
    assert chain["verified_seq"] == len(records) == chain["records"] and chain["reverified"] is True
    assert chain["quarantined"] == 0 and chain["gaps"] == [] and chain["error"] is None
    assert chain["keys"] == [agent.ledger.identity.public_key]
