"""Fixtures: a real backend process on a loopback port (SQLite, and PostgreSQL when configured), clients that
call it the way agents and people do, and records made by the real core.

Every API test takes the `server` fixture, which is parametrized over the databases: the whole suite runs on
SQLite always, and on a fresh throw-away PostgreSQL database when HASHED_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hashed import Hashed, Identity
from hashed.shipping import registration_message, signed_headers
from hashed_backend.testing import LocalBackend

PG_SKIP = "HASHED_TEST_DATABASE_URL is not set: PostgreSQL tests need a server (CI sets it)"

POLICY = """\
version: 1
default: deny
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 1000}
  - id: email
    tools: [send_email]
    effect: allow
  - id: never-delete
    tools: ["delete_*"]
    effect: deny
    reason: Agents never delete data.
"""


# -- servers ---------------------------------------------------------------------------------------------


# Every API test's server: LocalBackend (the one way this project starts a backend process), with a CORS origin
# and a body limit the tests exercise.
SERVER_ENV = {
    "HASHED_BACKEND_CORS_ORIGINS": '["https://dashboard.example"]',
    "HASHED_BACKEND_MAX_BODY_BYTES": str(2 * 1024 * 1024),
    # Several servers share the session's PostgreSQL database (replicas, custom settings): like replicas in
    # production they need one secret for the backend key (each would otherwise make its own key file).
    "HASHED_BACKEND_SECRET_KEY": "test secret shared by the servers of one database",
    # The tests act as a proxy on loopback: each client says its own address (see `client_ip`).
    "HASHED_BACKEND_FORWARDED_ALLOW_IPS": "127.0.0.1",
}


class Server(LocalBackend):
    """A `LocalBackend` that says which database it runs on (some tests differ by database)."""

    @property
    def database(self) -> str:
        return "postgresql" if self.database_url else "sqlite"


def start_server(tmp: Path, database_url: str | None, **env: str) -> Server:
    server = Server(tmp, database_url=database_url, env={**SERVER_ENV, **env})
    server.start()
    return server


def _fresh_pg() -> Iterator[str]:
    """A new PostgreSQL database next to HASHED_TEST_DATABASE_URL, dropped afterwards (skips without one)."""
    base = os.environ.get("HASHED_TEST_DATABASE_URL")
    if not base:
        pytest.skip(PG_SKIP)
    import psycopg

    name = f"hashed_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    yield from _fresh_pg()


@pytest.fixture
def throwaway_pg() -> Iterator[str]:
    """A PostgreSQL database of this test alone (for tests that start from an empty or an old schema)."""
    yield from _fresh_pg()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running backend, once per database for the whole session."""
    database_url = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    started = start_server(tmp_path_factory.mktemp(f"backend-{request.param}"), database_url)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def custom_server(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Start another backend on `server`'s database with extra settings (stopped after the test)."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        started.append(start_server(tmp_path_factory.mktemp("custom"), server.database_url, **env))
        return started[-1]

    yield start
    for each in started:
        each.stop()


# -- people, keys, agents --------------------------------------------------------------------------------

_ips = itertools.count(1)


def client_ip() -> str:
    """A distinct documentation-range address per client (sent as X-Forwarded-For from loopback, which the
    server trusts as a proxy), so per-IP auth rate limits of one test never throttle another."""
    n = next(_ips)
    return f"198.18.{n // 250 % 256}.{n % 250 + 1}"


class AgentAuth(httpx.Auth):
    """Signs each request the way an agent does: agent API key plus the four signature headers."""

    requires_request_body = True

    def __init__(self, api_key: str, identity: Identity):
        self.api_key = api_key
        self.identity = identity

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        target = request.url.raw_path.decode()
        request.headers["Authorization"] = f"Bearer {self.api_key}"
        request.headers.update(signed_headers(self.identity, request.method, target, request.content))
        yield request


@dataclasses.dataclass
class Org:
    id: str
    email: str
    password: str
    session: httpx.Client  # logged in with the session cookie
    admin: httpx.Client  # admin API key
    admin_key: str
    agent_key: str
    server: Server
    ip: str

    def agent_client(self, identity: Identity, api_key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url,
            auth=AgentAuth(api_key or self.agent_key, identity),
            timeout=30,
            headers={"X-Forwarded-For": self.ip},
        )

    def register(self, identity: Identity, name: str) -> dict[str, Any]:
        plain = httpx.Client(
            base_url=self.server.url,
            timeout=30,
            headers={"Authorization": f"Bearer {self.agent_key}", "X-Forwarded-For": self.ip},
        )
        with plain:
            chl = plain.post("/v1/agents/challenge", json={"name": name, "public_key": identity.public_key})
            assert chl.status_code == 201, chl.text
            challenge = chl.json()
            signature = identity.sign(registration_message(challenge["challenge"], name, identity.public_key)).hex()
            reg = plain.post(
                "/v1/agents/register",
                json={
                    "challenge_id": challenge["id"],
                    "name": name,
                    "public_key": identity.public_key,
                    "signature": signature,
                },
            )
            assert reg.status_code in (200, 201), reg.text
            return dict(reg.json())


def new_org(server: Server, name: str = "acme") -> Org:
    ip = client_ip()
    email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery staple"
    session = httpx.Client(base_url=server.url, timeout=30, headers={"X-Forwarded-For": ip})
    response = session.post("/v1/auth/signup", json={"email": email, "password": password, "org_name": name})
    assert response.status_code == 201, response.text
    org_id = response.json()["org"]["id"]
    admin_key = session.post("/v1/keys", json={"kind": "admin", "name": "ops"}).json()["key"]
    agent_key = session.post("/v1/keys", json={"kind": "agent", "name": "fleet"}).json()["key"]
    admin = httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {admin_key}", "X-Forwarded-For": ip}
    )
    return Org(org_id, email, password, session, admin, admin_key, agent_key, server, ip)


@pytest.fixture
def org(server: Server) -> Iterator[Org]:
    made = new_org(server)
    yield made
    made.session.close()
    made.admin.close()


@pytest.fixture
def other_org(server: Server) -> Iterator[Org]:
    made = new_org(server, "globex")
    yield made
    made.session.close()
    made.admin.close()


# -- records from the real core --------------------------------------------------------------------------


class Ledger:
    """An agent's real ledger (hashed.Hashed with a temporary home), driven by guarded calls."""

    def __init__(self, home: Path, identity: Identity, name: str):
        home.mkdir(parents=True, exist_ok=True)
        self.home, self.identity, self.name = home, identity, name
        self.hashed = Hashed(home=home, identity=identity, policy=POLICY, agent=name, key_passphrase="test passphrase")
        self._bind()

    def _bind(self) -> None:
        @self.hashed.guard("transfer_money")
        def transfer_money(to: str, amount: float) -> str:
            return f"sent {amount} to {to}"

        @self.hashed.guard("send_email")
        def send_email(to: str, body: str) -> str:
            return "sent"

        @self.hashed.guard("delete_records")
        def delete_records(table: str) -> str:
            return "deleted"

        self.transfer_money, self.send_email, self.delete_records = transfer_money, send_email, delete_records

    def activity(self, calls: int) -> None:
        """`calls` guarded calls: transfers (some over the limit), e-mails and a refused delete."""
        for i in range(calls):
            if i % 10 == 9:
                self.delete_records("customers")
            elif i % 3 == 2:
                self.send_email("a@example.com", f"message {i}")
            else:
                self.transfer_money(f"acct-{i}", 300 * (i % 5))

    def records(self, start: int = 1) -> list[dict[str, Any]]:
        self.hashed.flush()
        return [record.to_json() for record in self.hashed.ledger.records(start)]

    def rotate(self) -> Identity:
        """Rotate the agent key with the core (`Hashed.rotate_key`): a key_rotation record, then the new key."""
        self.identity = self.hashed.rotate_key()
        return self.identity

    def close(self) -> None:
        self.hashed.close()


@pytest.fixture
def make_ledger(tmp_path: Path) -> Iterator[Callable[..., Ledger]]:
    made: list[Ledger] = []

    def make(name: str = "billing-bot", identity: Identity | None = None) -> Ledger:
        ledger = Ledger(tmp_path / f"ledger-{len(made)}", identity or Identity.generate(), name)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.close()


@dataclasses.dataclass
class RegisteredAgent:
    org: Org
    ledger: Ledger
    info: dict[str, Any]
    client: httpx.Client

    @property
    def id(self) -> str:
        return str(self.info["id"])

    def ship(self, records: list[dict[str, Any]]) -> httpx.Response:
        return self.client.post("/v1/logs/batch", json={"records": records})


@pytest.fixture
def make_agent(make_ledger: Callable[..., Ledger]) -> Iterator[Callable[..., RegisteredAgent]]:
    clients: list[httpx.Client] = []

    def make(org: Org, name: str = "billing-bot", calls: int = 0) -> RegisteredAgent:
        ledger = make_ledger(name)
        info = org.register(ledger.identity, name)
        client = org.agent_client(ledger.identity)
        clients.append(client)
        if calls:
            ledger.activity(calls)
        return RegisteredAgent(org, ledger, info, client)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def new_ip() -> Callable[[], str]:
    """Hands out client addresses (see `client_ip`)."""
    return client_ip


@pytest.fixture
def fuzz_headers(server: Server) -> list[dict[str, str]]:
    """Credentials the fuzzer calls with: an admin key of a fuzzing organisation, and an unsigned agent key."""
    key = server.url
    found = _fuzz_orgs.get(key)
    if found is None:
        fuzzing = new_org(server, "fuzzing")
        fast = {"rate_per_s": 10_000}  # the fuzzer is fast; its own keys are not what is being rate limited
        admin = fuzzing.admin.post("/v1/keys", json={"kind": "admin", "name": "fuzz", **fast}).json()["key"]
        agent = fuzzing.admin.post("/v1/keys", json={"kind": "agent", "name": "fuzz", **fast}).json()["key"]
        fuzzing.session.close()
        fuzzing.admin.close()
        found = _fuzz_orgs[key] = [
            {"Authorization": f"Bearer {admin}", "X-Forwarded-For": fuzzing.ip},
            {"Authorization": f"Bearer {agent}", "X-Forwarded-For": fuzzing.ip},
        ]
    return found


_fuzz_orgs: dict[str, list[dict[str, str]]] = {}


@pytest.fixture(scope="session")
def replicas(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """Two backend processes on one PostgreSQL database, started at the same moment (both migrate)."""
    import concurrent.futures

    tmp = tmp_path_factory.mktemp("replicas")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        starting = [pool.submit(start_server, tmp / name, pg_database) for name in ("a", "b")]
    started = [future.result() for future in starting if future.exception() is None]
    failed = [error for error in (future.exception() for future in starting) if error is not None]
    try:
        if failed:  # the other one is stopped below, never left running after the tests
            raise failed[0]
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def new_org_on() -> Iterator[Callable[[Server], Org]]:
    """Make organisations on a given server (closed after the test)."""
    made: list[Org] = []

    def make(target: Server) -> Org:
        made.append(new_org(target))
        return made[-1]

    yield make
    for org in made:
        org.session.close()
        org.admin.close()
