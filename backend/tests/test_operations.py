"""Health, readiness, OpenAPI, security headers, CORS, error shapes, body limits, structured logs."""

from __future__ import annotations

import httpx
import orjson


def code(response):
    return response.json()["error"]["code"]


def test_health_and_ready(server):
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["revision"]


def test_openapi_document_lists_every_endpoint(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/logs/batch", "/v1/policy", "/v1/approvals/{approval_id}", "/v1/agents/register"} <= set(spec["paths"])
    batch = spec["paths"]["/v1/logs/batch"]["post"]
    assert {"X-Hashed-Signature", "X-Hashed-Nonce"} <= {p["name"] for p in batch["parameters"]}


def test_security_headers_and_request_id(server):
    response = httpx.get(f"{server.url}/health", headers={"X-Request-ID": "trace-123"})
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    assert headers["x-request-id"] == "trace-123"


def test_cors_allows_only_the_allowlist_with_credentials(server):
    allowed = httpx.options(
        f"{server.url}/v1/logs", headers={"Origin": "https://dashboard.example", "Access-Control-Request-Method": "GET"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://dashboard.example"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    denied = httpx.options(
        f"{server.url}/v1/logs", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in denied.headers
    simple = httpx.get(f"{server.url}/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_unknown_route_and_wrong_method_use_the_error_shape(server):
    missing = httpx.get(f"{server.url}/v1/nothing-here")
    assert missing.status_code == 404 and code(missing) == "not_found"
    wrong = httpx.delete(f"{server.url}/health")
    assert wrong.status_code == 405 and code(wrong) == "method_not_allowed"


def test_malformed_json_wrong_types_and_unknown_fields(org):
    broken = org.admin.post("/v1/keys", content=b'{"kind": "admin", ', headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and code(broken) == "malformed_json"
    wrong = org.admin.post("/v1/keys", json={"kind": "root", "name": 5})
    assert wrong.status_code == 422 and code(wrong) == "invalid_request"
    assert {d["field"] for d in wrong.json()["error"]["details"]} == {"kind", "name"}
    unknown = org.admin.post("/v1/keys", json={"kind": "admin", "name": "x", "admin": True})
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["field"] == "admin"
    assert len(org.admin.get("/v1/keys").json()) == 2  # nothing was created by the bad requests


def test_oversized_body_is_413_with_or_without_content_length(org, make_agent):
    agent = make_agent(org, calls=2)
    agent.ship(agent.ledger.records())
    big = b'{"records": [' + b",".join([b'{"pad": "' + b"x" * 1000 + b'"}'] * 3000) + b"]}"
    declared = org.admin.post("/v1/logs/batch", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and code(declared) == "body_too_large"

    def chunks():
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = agent.client.post("/v1/logs/batch", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and code(streamed) == "body_too_large"
    # What was stored before is intact.
    assert len(org.admin.get("/v1/logs", params={"agent": agent.id}).json()["items"]) == len(agent.ledger.records())


def test_too_many_records_in_one_batch_is_413(org, make_agent):
    agent = make_agent(org)
    response = agent.ship([{"seq": i} for i in range(1001)])
    assert response.status_code == 413 and code(response) == "batch_too_large"


def test_logs_are_json_lines(server, org):
    org.admin.get("/v1/agents", headers={"X-Request-ID": "find-me-in-the-log"})
    org.admin.get("/health")  # one more line after it
    # Other tests' requests may still be being written; read the lines of this request.
    lines = [orjson.loads(line) for line in server.logs().splitlines() if "find-me-in-the-log" in line]
    access = [line for line in lines if line.get("request_id") == "find-me-in-the-log"]
    assert access and access[0]["path"] == "/v1/agents" and access[0]["status"] == 200
    assert {"ts", "level", "logger", "message", "duration_ms"} <= set(access[0])
