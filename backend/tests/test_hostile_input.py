"""Hostile and unlucky input (issue #15): every malformed input gets a 4xx that names it, on both databases, and
nothing a signed record may contain stops an agent's ingest.

Records here are made by the real core, then edited and signed again with the agent's own key, so that they
pass every check but the one under test (an attacker with the agent key, or a tool list with odd names).
"""

from __future__ import annotations

import copy
import json
import socket

import httpx
import pytest

from hashed.ledger import record_hash, signing_message
from hashed.shipping import signed_headers


def resigned(records, identity, edits):
    """`records` with `edits[i](record)` applied, hashed, chained and signed again from the first edit on."""
    out = copy.deepcopy(records)
    first = min(edits)
    for i in range(first, len(out)):
        record = out[i]
        if i in edits:
            edits[i](record)
        if i > first:
            record["prev"] = out[i - 1]["hash"]
        record.pop("sig", None)
        record["hash"] = record_hash({k: v for k, v in record.items() if k != "hash"})
        record["sig"] = identity.sign(signing_message(bytes.fromhex(record["hash"]))).hex()
    return out


def ship_raw(agent, records):
    """POST a batch as ASCII JSON (`\\ud800` stays an escape: httpx's own encoder cannot write it)."""
    body = json.dumps({"records": records}).encode()
    return agent.client.post("/v1/logs/batch", content=body, headers={"Content-Type": "application/json"})


def results(response):
    assert response.status_code == 200, response.text
    return [(r["seq"], r["status"], r["code"]) for r in response.json()["results"]]


def reasons(response):
    return [r["reason"] for r in response.json()["results"]]


def quarantined(org, **params):
    response = org.admin.get("/v1/logs/quarantine", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


# -- 1. records a database cannot store as such ---------------------------------------------------------------


def test_ingest_nul_in_a_signed_tool_name_is_stored_and_ingest_goes_on(org, make_agent):
    agent = make_agent(org, calls=6)
    records = resigned(agent.ledger.records(), agent.ledger.identity, {1: lambda r: r.update(tool="evil\x00tool")})
    assert results(agent.ship(records[:3])) == [(r["seq"], "stored", None) for r in records[:3]]
    assert results(agent.ship(records[3:])) == [(r["seq"], "stored", None) for r in records[3:]]
    stored = org.admin.get("/v1/logs", params={"agent": agent.id, "limit": 500}).json()["items"]
    by_seq = {item["seq"]: item for item in stored}
    assert by_seq[2]["record"]["tool"] == "evil\x00tool"  # the signed record, exactly as sent
    assert by_seq[2]["record"] == records[1]


@pytest.mark.parametrize("field", ["hash", "nonce", "tool"])
def test_ingest_lone_surrogate_in_a_record_is_refused_and_ingest_goes_on(org, make_agent, field):
    agent = make_agent(org, calls=4)
    records = agent.ledger.records()
    bad = {**records[0], field: "\ud800"}
    response = ship_raw(agent, [bad])
    assert results(response) == [(1, "refused", "malformed")]
    [entry] = quarantined(org, agent=agent.id)
    assert entry["code"] == "malformed" and entry["record"][field] == "\\ud800"  # shown escaped
    # The agent's audit goes on: the genuine records are stored after it.
    assert results(agent.ship(records)) == [(r["seq"], "stored", None) for r in records]


def test_ingest_nul_and_surrogates_from_an_unknown_key_are_quarantined(org, make_ledger):
    ledger = make_ledger("stranger")
    ledger.activity(2)
    records = [{**r, "hash": "\ud800\x00"} for r in ledger.records()]
    with org.agent_client(ledger.identity) as client:
        body = json.dumps({"records": records}).encode()
        response = client.post("/v1/logs/batch", content=body, headers={"Content-Type": "application/json"})
    assert {code for _, _, code in results(response)} == {"unknown_agent"}
    assert {entry["code"] for entry in quarantined(org)} == {"unknown_agent"}


# -- 2. NUL in ids, paths, query parameters and text fields ----------------------------------------------------


def test_nul_in_unauthenticated_login_is_422_naming_the_field(server, new_ip):
    response = httpx.post(
        f"{server.url}/v1/auth/login",
        json={"email": "a\x00b@example.com", "password": "x"},
        headers={"X-Forwarded-For": new_ip()},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("email:")


def test_nul_in_signup_is_422_and_nothing_is_created(server, new_ip):
    ip = new_ip()
    body = {"email": "nul-org@example.com", "password": "correct horse battery", "org_name": "Acme\x00Evil"}
    response = httpx.post(f"{server.url}/v1/auth/signup", json=body, headers={"X-Forwarded-For": ip})
    assert response.status_code == 422 and response.json()["error"]["message"].startswith("org_name:")
    login = {"email": "nul-org@example.com", "password": "correct horse battery"}
    assert httpx.post(f"{server.url}/v1/auth/login", json=login, headers={"X-Forwarded-For": ip}).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("POST", "/v1/keys", {"json": {"kind": "admin", "name": "ops\x00"}}, "name"),
        ("PUT", "/v1/policies/org", {"json": {"yaml": "version: 1\x00\n"}}, "yaml"),
        ("GET", "/v1/agents/agt%00x", {}, "path"),
        ("GET", "/v1/keys/key%00", {}, "path"),
        ("GET", "/v1/logs", {"params": {"tool": "a\x00b"}}, "query.tool"),
        ("GET", "/v1/logs", {"params": {"q": "\x00"}}, "query.q"),
        ("GET", "/v1/logs/quarantine", {"params": {"code": "x\x00"}}, "query.code"),
        ("GET", "/v1/approvals", {"params": {"cursor": "1:\x00"}}, "query.cursor"),
        ("GET", "/v1/policies/org%00/versions", {}, "path"),
    ],
)
def test_nul_anywhere_is_422_naming_the_field(org, method, path, kwargs, field):
    response = org.admin.request(method, path, **kwargs)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(f"{field}:"), response.text


# -- 3. other malformed input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["\u00b2", "1" * 30, "-1", "\u0661"])
@pytest.mark.parametrize("path", ["/v1/logs", "/v1/logs/quarantine", "/v1/approvals"])
def test_malformed_cursor_is_422(org, path, cursor):
    if path == "/v1/approvals":
        cursor = f"{cursor}:apr_x"
    response = org.admin.get(path, params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert "cursor" in response.json()["error"]["message"]


@pytest.mark.parametrize("last_event_id", [b"\xc2\xb2", b"1" * 30, b"1" * 40])
def test_malformed_last_event_id_is_4xx(org, last_event_id):
    response = org.admin.get("/v1/logs/stream", params={"limit": 1}, headers={"Last-Event-ID": last_event_id})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


def test_huge_signature_timestamp_is_401_with_a_message(org, make_agent):
    agent = make_agent(org)
    request = agent.client.build_request("GET", "/v1/policy")
    request = next(agent.client.auth.auth_flow(request))
    request.headers["X-Hashed-Timestamp"] = "9" * 5000
    with httpx.Client(timeout=30) as client:
        response = client.send(request)
    assert response.status_code == 401 and response.json()["error"]["code"] == "signature_invalid"


# -- 7. every field of every record kind, and tampered resends ---------------------------------------------------


def test_ingest_tampered_resend_of_a_stored_record_is_a_quarantined_conflict(org, make_agent):
    agent = make_agent(org, calls=4)
    records = agent.ledger.records()
    assert {s for _, s, _ in results(agent.ship(records))} == {"stored"}
    tampered = {**records[1], "tool": "something_else"}  # the stored hash and signature, other contents
    assert results(agent.ship([tampered])) == [(2, "refused", "conflict")]
    [entry] = quarantined(org, agent=agent.id)
    assert entry["code"] == "conflict" and entry["record"]["tool"] == "something_else"
    # A faithful resend is still a duplicate.
    assert results(agent.ship(records)) == [(r["seq"], "duplicate", None) for r in records]


def _drop(name):
    return lambda record: record.pop(name)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda r: r.update(nonce="x"), "nonce"),
        (lambda r: r.update(ts="not-a-time"), "ts"),
        (lambda r: r.update(prev="0" * 63), "prev"),
        (lambda r: r.update(key=r["key"].upper()), "key"),
        (_drop("effect"), "effect"),
        (_drop("tool"), "tool"),
        (_drop("args_digest"), "args_digest"),
        (lambda r: r.update(effect="maybe"), "effect"),
        (lambda r: r.update(shadow="no"), "shadow"),
        (lambda r: r.update(agent=None), "agent"),
    ],
)
def test_ingest_signed_record_with_a_malformed_field_is_refused(org, make_agent, edit, words):
    agent = make_agent(org, calls=1)
    records = agent.ledger.records()
    assert records[0]["kind"] == "decision"
    [bad] = resigned(records[:1], agent.ledger.identity, {0: edit})
    response = agent.ship([bad])
    assert results(response) == [(1, "refused", "malformed")]
    assert words in reasons(response)[0]
    assert quarantined(org, agent=agent.id)[0]["code"] == "malformed"


def test_ingest_outcome_without_its_fields_is_refused(org, make_agent):
    agent = make_agent(org, calls=1)
    records = agent.ledger.records()
    assert [r["kind"] for r in records] == ["decision", "outcome"]
    batch = resigned(records, agent.ledger.identity, {1: _drop("duration_ns")})
    response = agent.ship(batch)
    assert results(response) == [(1, "stored", None), (2, "refused", "malformed")]
    assert "duration_ns" in reasons(response)[1]


@pytest.mark.parametrize("seq", [0, -1, -(2**40)])
def test_ingest_seq_below_one_gets_an_accurate_reason(org, make_agent, seq):
    agent = make_agent(org, calls=1)
    [bad] = resigned(agent.ledger.records()[:1], agent.ledger.identity, {0: lambda r: r.update(seq=seq)})
    response = agent.ship([bad])
    assert results(response) == [(seq, "refused", "malformed")]
    assert "seq must be 1 or more" in reasons(response)[0]


# -- 8. batch limits ----------------------------------------------------------------------------------------------


def test_chunked_body_over_the_limit_is_413_and_the_connection_closed(org, make_agent):
    agent = make_agent(org)
    chunk = b"x" * 65536
    body = chunk * 64  # 4 MiB, twice the test servers' body limit
    signed = signed_headers(agent.ledger.identity, "POST", "/v1/logs/batch", body)
    head = "".join(f"{name}: {value}\r\n" for name, value in signed.items()).encode()
    port = int(org.server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/logs/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nX-Forwarded-For: %s\r\n%sTransfer-Encoding: chunked\r\n\r\n"
            % (org.agent_key.encode(), org.ip.encode(), head)
        )
        answer = b""
        try:
            for start in range(0, len(body), len(chunk)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), body[start : start + len(chunk)]))
        except (BrokenPipeError, ConnectionResetError):
            pass
        while data := _recv(sock):
            answer += data
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 413") and b"connection: close" in head
    assert data == b""  # the server closed the connection


def _recv(sock):
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


# -- 4. header size and count -------------------------------------------------------------------------------------


def _rss(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def test_oversized_header_is_431_the_connection_closed_and_memory_bounded(server):
    before = _rss(server.process.pid)
    port = int(server.url.rsplit(":", 1)[1])
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        piece = b"a" * (1024 * 1024)
        try:
            for _ in range(64):  # up to 64 MiB of one header
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while data := _recv(sock):
            answer += data
    assert answer.startswith(b"HTTP/1.1 431") and b"connection: close" in answer.lower()
    assert b"headers_too_large" in answer
    assert sent < 64 * 1024 * 1024  # the server stopped reading long before
    assert _rss(server.process.pid) - before < 16 * 1024 * 1024


def test_a_long_url_counts_as_head_bytes(server):
    response = httpx.get(f"{server.url}/health", params={"x": "a" * 40_000}, headers={"X-Pad": "b" * 30_000})
    assert response.status_code == 431


def test_too_many_headers_is_431(server):
    headers = [(f"X-Many-{i}", "1") for i in range(150)]
    response = httpx.get(f"{server.url}/health", headers=headers)
    assert response.status_code == 431 and response.json()["error"]["code"] == "headers_too_large"
    assert httpx.get(f"{server.url}/health", headers=headers[:50]).status_code == 200


# -- 8. a configured batch limit above 10,000 records holds -------------------------------------------------------


def test_configured_batch_limit_above_ten_thousand_is_honoured(custom_server, new_org_on, make_ledger):
    big = custom_server(HASHED_BACKEND_MAX_BATCH_RECORDS="12000")
    org = new_org_on(big)
    ledger = make_ledger()
    org.register(ledger.identity, "bulk")
    with org.agent_client(ledger.identity) as client:
        accepted = client.post("/v1/logs/batch", json={"records": [{"seq": 1}] * 12_000})
        refused = client.post("/v1/logs/batch", json={"records": [{"seq": 1}] * 12_001})
    assert accepted.status_code == 200 and len(accepted.json()["results"]) == 12_000
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "batch_too_large"
    assert "12000" in refused.json()["error"]["message"]
