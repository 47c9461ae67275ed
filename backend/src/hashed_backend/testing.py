"""A real backend process on loopback, for end-to-end tests, recordings and demos (never a stand-in).

Example:
    with LocalBackend(tmp_path) as backend:
        org = backend.bootstrap()                  # a person, an organisation, an admin key
        agent_key = org.create_key("agent", "billing-bot")
        # point an agent at backend.url with agent_key
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = ["LocalBackend", "Organisation", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Organisation:
    """A signed-up organisation and an admin key to act for it."""

    url: str
    email: str
    admin_key: str

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """One admin request; returns the JSON answer (raises for an error status)."""
        response = httpx.request(
            method,
            self.url + path,
            json=body,
            params=params or None,
            timeout=30,
            headers={"Authorization": f"Bearer {self.admin_key}"},
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def create_key(self, kind: str, name: str) -> str:
        """A new API key of `kind` (admin or agent); the secret is shown only here."""
        return str(self.call("POST", "/v1/keys", {"kind": kind, "name": name})["key"])

    def put_policy(self, yaml: str, scope: str = "org", *, allow_removals: bool = True) -> Any:
        """Store a policy version for `scope` (org or an agent id)."""
        return self.call("PUT", f"/v1/policies/{scope}", {"yaml": yaml, "allow_removals": allow_removals})


class LocalBackend:
    """`python -m hashed_backend serve` on a free loopback port, with its data in `folder`.

    Args:
        folder: where the SQLite database and the server log go.
        database_url: PostgreSQL URL instead of SQLite.
        port: a fixed port (default: a free one; kept across `restart`).
        env: extra `HASHED_BACKEND_*` settings.
    """

    def __init__(
        self,
        folder: Path,
        *,
        database_url: str | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.database_url = database_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "backend.log"
        self.starts = 0
        self._env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> LocalBackend:
        """Start the server and wait until `/ready` answers.

        Raises:
            RuntimeError: the server exited or did not become ready (its log is in the message).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("HASHED_")}  # never the caller's own
        environ = {
            **inherited,
            "HASHED_BACKEND_PORT": str(self.port),
            "HASHED_BACKEND_DATA_DIR": str(self.folder / "data"),
            "HASHED_BACKEND_POLL_INTERVAL_S": "0.05",
            **self._env,
        }
        if self.database_url is not None:
            environ["HASHED_DATABASE_URL"] = self.database_url
        self.starts += 1
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hashed_backend", "serve"],
                env=environ,
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the backend exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the backend did not become ready in {timeout:g}s:\n{self.logs()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s); safe when it is not running."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def logs(self) -> str:
        """The server's output so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def bootstrap(
        self,
        email: str | None = None,
        password: str = "correct horse battery staple",  # noqa: S107 - a throw-away test organisation
        org: str = "Example Org",
    ) -> Organisation:
        """Sign a person up (which creates an organisation) and make an admin key for them."""
        email = email or f"admin-{uuid.uuid4().hex[:8]}@example.com"
        with httpx.Client(base_url=self.url, timeout=30) as client:
            client.post(
                "/v1/auth/signup",
                json={"email": email, "password": password, "org_name": org},
                headers={"Origin": self.url},
            ).raise_for_status()
            created = client.post("/v1/keys", json={"kind": "admin", "name": "bootstrap"}, headers={"Origin": self.url})
            created.raise_for_status()
        return Organisation(self.url, email, str(created.json()["key"]))

    def __enter__(self) -> LocalBackend:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
