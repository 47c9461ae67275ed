"""Querying logs (filters, keyset pagination), JSONL export that the core verifies, live feed (SSE)."""

from __future__ import annotations

import threading
import time

import httpx
import orjson

from hashed.ledger import read_export, verify_records


def items(org, **params):
    response = org.admin.get("/v1/logs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_filters_by_agent_tool_effect_kind_and_text(org, make_agent):
    alice, bob = make_agent(org, "alice", calls=20), make_agent(org, "bob", calls=5)
    alice.ship(alice.ledger.records())
    bob.ship(bob.ledger.records())
    everything = items(org, limit=500)["items"]
    assert len(everything) == len(alice.ledger.records()) + len(bob.ledger.records())
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    assert {e["agent"] for e in items(org, agent="alice", limit=500)["items"]} == {"alice"}
    assert {e["agent_id"] for e in items(org, agent=bob.id, limit=500)["items"]} == {bob.id}
    denied = items(org, effect="deny", limit=500)["items"]
    assert denied and all(e["record"]["effect"] == "deny" for e in denied)
    assert {e["tool"] for e in denied} == {"transfer_money", "delete_records"}
    emails = items(org, tool="send_email", kind="outcome", limit=500)["items"]
    assert emails and all(e["kind"] == "outcome" and e["tool"] == "send_email" for e in emails)
    text = items(org, q="acct-4", limit=500)["items"]
    assert text and all("acct-4" in orjson.dumps(e["record"]).decode() for e in text)
    assert items(org, q="no such text anywhere")["items"] == []


def test_time_range_filters_on_record_time(org, make_agent):
    agent = make_agent(org, calls=4)
    records = agent.ledger.records()
    agent.ship(records)
    middle = int(records[len(records) // 2]["ts"])
    before = items(org, until=str(middle), limit=500)["items"]
    after = items(org, since=str(middle), limit=500)["items"]
    assert len(before) + len(after) == len(records)
    assert all(int(e["record"]["ts"]) < middle for e in before)
    iso = items(org, since="2000-01-01T00:00:00Z", until="2100-01-01T00:00:00Z", limit=500)["items"]
    assert len(iso) == len(records)
    bad = org.admin.get("/v1/logs", params={"since": "yesterday"})
    assert bad.status_code == 422


def test_keyset_pagination_visits_every_record_once(org, make_agent):
    agent = make_agent(org, calls=30)
    records = agent.ledger.records()
    agent.ship(records)
    seen, cursor = [], None
    while True:
        page = items(org, limit=7, **({"cursor": cursor} if cursor else {}))
        seen += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [r["seq"] for r in records] and len(seen) == len(set(seen))


def test_export_is_the_chain_exactly_as_ingested_and_verifies_with_the_core(org, make_agent, tmp_path):
    agent = make_agent(org, calls=15)
    records = agent.ledger.records()
    agent.ship(records[:10])
    agent.ship(records[10:])
    response = org.admin.get("/v1/logs/export", params={"agent": "billing-bot"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/jsonl")
    path = tmp_path / "export.jsonl"
    path.write_bytes(response.content)
    exported = list(read_export(path))
    assert exported == records
    report = verify_records(exported, key=agent.ledger.identity.public_key)
    assert report.ok and report.count == len(records) and report.head == records[-1]["hash"]
    part = org.admin.get("/v1/logs/export", params={"agent": agent.id, "from_seq": 3, "to_seq": 5})
    assert [orjson.loads(line)["seq"] for line in part.content.splitlines()] == [3, 4, 5]


def test_live_feed_streams_new_records(org, make_agent):
    agent = make_agent(org, calls=6)
    records = agent.ledger.records()
    agent.ship(records[:2])  # already stored: not part of the feed, which starts now
    events = []

    def listen():
        with httpx.Client(base_url=org.server.url, headers=org.admin.headers, timeout=30) as client:
            with client.stream("GET", "/v1/logs/stream", params={"limit": len(records) - 2}) as stream:
                event = {}
                for line in stream.iter_lines():
                    if line.startswith("id: "):
                        event["id"] = int(line[4:])
                    elif line.startswith("data: "):
                        event["data"] = orjson.loads(line[6:])
                    elif line == "" and "data" in event:
                        events.append(event)
                        event = {}

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.5)
    agent.ship(records[2:4])
    agent.ship(records[4:])
    listener.join(20)
    assert not listener.is_alive()
    assert [e["data"]["seq"] for e in events] == [r["seq"] for r in records[2:]]
    assert [e["data"]["record"] for e in events] == records[2:]
    # Resuming after an event id replays what followed it.
    with org.admin.stream(
        "GET", "/v1/logs/stream", params={"limit": 1}, headers={"Last-Event-ID": str(events[0]["id"])}
    ) as stream:
        data = next(line for line in stream.iter_lines() if line.startswith("data: "))
    assert orjson.loads(data[6:])["seq"] == records[3]["seq"]
