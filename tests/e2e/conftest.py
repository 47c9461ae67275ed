"""End-to-end fixtures: a real backend process on loopback, an organisation on it, and the `hashed` CLI run
against it the way a person runs it (own config folder, own project folder, nothing shared between tests).

The backend is started once per session (`python -m hashed_backend serve`, SQLite in a temporary folder);
every test signs up its own organisation, so no test sees another's keys, agents, policies or records.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from hashed import Hashed, Identity
from hashed.cli._output import console, err
from hashed.cli.app import app
from hashed.shipping import BackendClient
from hashed_backend.testing import LocalBackend, free_port

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
PASSWORD = "correct horse battery staple"
PASSPHRASE = "e2e test passphrase"


# A test backend: its own SQLite file, fast polling, and no rate limit a test could trip over.
TEST_BACKEND_ENV = {
    "HASHED_BACKEND_AUTH_RATE_PER_IP": "1000",
    "HASHED_BACKEND_AUTH_BURST_PER_IP": "1000",
    "HASHED_BACKEND_RATE_PER_KEY": "1000",
    "HASHED_BACKEND_BURST_PER_KEY": "1000",
}


@pytest.fixture
def closed_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """`python -m hashed_backend serve` on a free loopback port, SQLite file in a temporary folder."""
    with LocalBackend(tmp_path_factory.mktemp("backend"), env=TEST_BACKEND_ENV) as running:
        yield running


@pytest.fixture
def restartable_backend(tmp_path: Path) -> Iterator[LocalBackend]:
    """A backend of this test alone, which can be stopped and started again on the same port and database."""
    with LocalBackend(tmp_path / "backend", env=TEST_BACKEND_ENV) as running:
        yield running


@dataclasses.dataclass
class Org:
    """A fresh organisation: its owner's e-mail and password, an admin key and an agent key."""

    url: str
    email: str
    password: str
    admin_key: str
    agent_key: str
    admin: httpx.Client

    def agent_client(self, identity: Identity, api_key: str | None = None) -> BackendClient:
        return BackendClient(self.url, api_key or self.agent_key, lambda: identity, timeout=30)


_orgs = itertools.count(1)


@pytest.fixture
def org(backend: LocalBackend) -> Iterator[Org]:
    email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=backend.url, timeout=30) as session:
        signup = session.post(
            "/v1/auth/signup", json={"email": email, "password": PASSWORD, "org_name": f"org-{next(_orgs)}"}
        )
        assert signup.status_code == 201, signup.text
        admin_key = session.post("/v1/keys", json={"kind": "admin", "name": "ops"}).json()["key"]
        agent_key = session.post("/v1/keys", json={"kind": "agent", "name": "fleet"}).json()["key"]
    admin = httpx.Client(base_url=backend.url, timeout=30, headers={"Authorization": f"Bearer {admin_key}"})
    yield Org(backend.url, email, PASSWORD, admin_key, agent_key, admin)
    admin.close()


@dataclasses.dataclass
class Cli:
    """Runs `hashed …` in-process (typer's CliRunner) inside this test's own folders."""

    home: Path  # the project's .hashed folder
    config: Path  # XDG_CONFIG_HOME
    cwd: Path
    runner: CliRunner

    def __call__(self, *args: str, input: str | None = None, code: int | None = 0) -> Result:
        result = self.runner.invoke(app, list(args), input=input)
        if code is not None:
            detail = f"hashed {' '.join(args)} -> {result.exit_code}\n{result.output}"
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                detail += f"\n{result.exception!r}"
            assert result.exit_code == code, detail
        return result

    def process(self, *args: str, code: int | None = 0, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`hashed …` as its own process (same folders and variables), to completion."""
        done = subprocess.run(
            [sys.executable, "-m", "hashed.cli", *args],
            cwd=self.cwd,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if code is not None:
            assert done.returncode == code, f"hashed {' '.join(args)} -> {done.returncode}\n{done.stdout}{done.stderr}"
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`hashed …` as a running process (stdout and stderr piped), which Ctrl-C (SIGINT) stops.

        A test run started in the background by a non-interactive shell ignores SIGINT, and children inherit
        that: the command would then never see the Ctrl-C a test sends it.
        """
        return subprocess.Popen(
            [sys.executable, "-m", "hashed.cli", *args],
            cwd=self.cwd,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,  # resets one signal before exec: safe here
        )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """No login, no project: a clean config folder and working directory for this test."""
    for name in list(os.environ):
        if name.startswith("HASHED_"):  # the developer's own settings never leak into a test
            monkeypatch.delenv(name)
    config = tmp_path / "config"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("HASHED_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("COLUMNS", "250")  # rich tables: ids and hashes are not wrapped in assertions
    for stream in (console, err):  # read once at import when COLUMNS was set then (pytest-xdist's workers set 80)
        monkeypatch.setattr(stream, "width", 250)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(work)
    return Cli(home=work / ".hashed", config=config, cwd=work, runner=CliRunner())


@pytest.fixture
def logged_in(cli: Cli, org: Org) -> Cli:
    """`hashed login --key <admin key>` done."""
    cli("login", "--url", org.url, "--key", org.admin_key)
    return cli


# -- records from the real core -------------------------------------------------------------------------


class Agent:
    """A real agent: `hashed.Hashed` with its own ledger (offline), and the core's client to ship with."""

    def __init__(self, home: Path, org: Org, name: str, api_key: str | None = None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.name, self.home, self.org = name, home, org
        self.identity = Identity.generate()
        self.hashed = Hashed(home=home, identity=self.identity, policy=POLICY, agent=name, key_passphrase=PASSPHRASE)
        self.client = org.agent_client(self.identity, api_key)
        self.shipped = 0

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

    def register(self) -> dict[str, Any]:
        return self.client.register(self.name)

    def activity(self, calls: int) -> None:
        """`calls` guarded calls: transfers (some over the limit), e-mails, and every tenth a refused delete."""
        for i in range(calls):
            if i % 10 == 9:
                self.delete_records("customers")
            elif i % 3 == 2:
                self.send_email("a@example.com", f"message {i}")
            else:
                self.transfer_money(f"acct-{i}", 300 * (i % 5))

    def ship(self) -> dict[str, Any]:
        """Send every record not sent yet with the core's client (what the shipper does, in the foreground)."""
        self.hashed.flush()
        records = [r.to_json() for r in self.hashed.ledger.records(self.shipped + 1)]
        answer = self.client.send(records)
        assert all(r["status"] in ("stored", "duplicate") for r in answer["results"]), answer
        self.shipped = records[-1]["seq"] if records else self.shipped
        return answer

    def close(self) -> None:
        self.client.close()
        self.hashed.close()


@pytest.fixture
def make_agent(tmp_path: Path, org: Org) -> Iterator[Callable[..., Agent]]:
    made: list[Agent] = []

    def make(name: str = "billing-bot", api_key: str | None = None) -> Agent:
        agent = Agent(tmp_path / f"agent-{len(made)}", org, name, api_key)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close()


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
