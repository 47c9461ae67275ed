"""Two server processes on one PostgreSQL database behave as one backend (requests interleaved)."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx
import orjson

from hashed.protocol import MemoryNodeStore


def tree_root(records) -> str:
    store = MemoryNodeStore()
    store.extend(bytes.fromhex(r["hash"]) for r in records)
    return store.root().hex()


def on(server, client):
    """The same credentials against another replica."""
    return httpx.Client(
        base_url=server.url, headers=client.headers, auth=client.auth, cookies=client.cookies, timeout=30
    )


def test_interleaved_ingest_builds_one_chain(replicas, make_ledger, new_org_on):
    a, b = replicas
    org = new_org_on(a)
    ledger = make_ledger("shared-bot")
    agent = org.register(ledger.identity, "shared-bot")
    ledger.activity(40)
    records = ledger.records()
    with org.agent_client(ledger.identity) as via_a, on(b, org.agent_client(ledger.identity)) as via_b:
        for index, start in enumerate(range(0, len(records), 9)):
            client = via_a if index % 2 == 0 else via_b
            result = client.post("/v1/logs/batch", json={"records": records[start : start + 9]}).json()
            assert {r["status"] for r in result["results"]} == {"stored"}
        assert via_b.post("/v1/logs/batch", json={"records": records}).json()["head"]["seq"] == len(records)
    with on(b, org.admin) as admin_b:
        exported = [
            orjson.loads(line)
            for line in admin_b.get("/v1/logs/export", params={"agent": agent["id"]}).content.splitlines()
        ]
    assert exported == records
    with on(b, org.admin) as admin_b:  # one Merkle tree, built by both replicas' batches in turn
        assert admin_b.get(f"/v1/agents/{agent['id']}/checkpoint").json()["root"] == tree_root(records)


def test_the_same_batch_sent_to_both_at_once_is_stored_once(replicas, make_ledger, new_org_on):
    a, b = replicas
    org = new_org_on(a)
    ledger = make_ledger("racer")
    org.register(ledger.identity, "racer")
    ledger.activity(60)
    records = ledger.records()
    with org.agent_client(ledger.identity) as via_a, on(b, org.agent_client(ledger.identity)) as via_b:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda c: c.post("/v1/logs/batch", json={"records": records}), [via_a, via_b]))
    assert [r.status_code for r in answers] == [200, 200]
    for i, record in enumerate(records):
        statuses = sorted(answer.json()["results"][i]["status"] for answer in answers)
        assert statuses == ["duplicate", "stored"], (record["seq"], statuses)
    with on(b, org.admin) as admin_b:
        chain = admin_b.get("/v1/agents", params={}).json()[0]
        tree = admin_b.get(f"/v1/agents/{chain['id']}/checkpoint").json()
    assert chain["head"] == {"seq": len(records), "hash": records[-1]["hash"]}
    assert (tree["size"], tree["root"]) == (len(records), tree_root(records))  # the race left one tree, not two


def test_a_nonce_used_on_one_replica_is_refused_on_the_other(replicas, make_ledger, new_org_on):
    a, b = replicas
    org = new_org_on(a)
    ledger = make_ledger("nonce-bot")
    org.register(ledger.identity, "nonce-bot")
    from hashed.shipping import signed_headers

    headers = {"Authorization": f"Bearer {org.agent_key}", **signed_headers(ledger.identity, "GET", "/v1/approvals")}
    assert httpx.get(f"{a.url}/v1/approvals", headers=headers).status_code == 200
    replay = httpx.get(f"{b.url}/v1/approvals", headers=headers)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "nonce_reused"


def test_approval_answered_on_one_replica_reaches_a_long_poll_on_the_other(replicas, make_ledger, new_org_on):
    a, b = replicas
    org = new_org_on(a)
    ledger = make_ledger("waiting-bot")
    org.register(ledger.identity, "waiting-bot")
    with org.agent_client(ledger.identity) as via_a, on(b, org.agent_client(ledger.identity)) as via_b:
        request = via_a.post("/v1/approvals", json={"call": "c", "tool": "t", "args_digest": "ef" * 32}).json()
        timer = threading.Timer(0.5, lambda: org.session.post(f"/v1/approvals/{request['id']}/approve", json={}))
        timer.start()
        started = time.monotonic()
        answered = via_b.get(f"/v1/approvals/{request['id']}", params={"wait": 10}).json()
        timer.join()
    assert answered["status"] == "approved" and time.monotonic() - started < 5
    keys = {httpx.get(f"{server.url}/v1/backend-key").json()["public_key"] for server in replicas}
    assert len(keys) == 1  # both replicas sign with the one backend key


def test_live_feed_on_one_replica_sees_records_stored_through_the_other(replicas, make_ledger, new_org_on):
    a, b = replicas
    org = new_org_on(a)
    ledger = make_ledger("feed-bot")
    org.register(ledger.identity, "feed-bot")
    ledger.activity(3)
    records = ledger.records()
    seen = []

    def listen():
        with org.admin.stream("GET", "/v1/logs/stream", params={"limit": len(records)}) as stream:
            seen.extend(orjson.loads(line[6:])["seq"] for line in stream.iter_lines() if line.startswith("data: "))

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.5)
    with on(b, org.agent_client(ledger.identity)) as via_b:
        via_b.post("/v1/logs/batch", json={"records": records})
    listener.join(20)
    assert seen == [r["seq"] for r in records]


def test_sessions_and_policies_are_shared(replicas, make_ledger, new_org_on):
    a, b = replicas
    org = new_org_on(a)
    ledger = make_ledger("policy-bot")
    org.register(ledger.identity, "policy-bot")
    with on(b, org.session) as session_b:
        assert session_b.get("/v1/auth/me").json()["org"]["id"] == org.id
        assert session_b.put("/v1/policies/org", json={"yaml": "rules: []\n"}).status_code == 201
    with org.agent_client(ledger.identity) as via_a:
        etag = via_a.get("/v1/policy").headers["ETag"]
    with on(b, org.agent_client(ledger.identity)) as via_b:
        assert via_b.get("/v1/policy", headers={"If-None-Match": etag}).status_code == 304
