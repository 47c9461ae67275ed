"""The command line's client for the backend's admin API, and one way to turn its errors into next steps.

Admin requests are not signed: they carry `Authorization: Bearer <admin key>` (docs/api.md, "Auth"). Errors
are the core's `BackendError` (the backend refused) and `BackendUnavailable` (unreachable, overloaded).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

import httpx

from hashed._docs import docs_url
from hashed._version import __version__
from hashed.cli._credentials import Credentials, load_credentials
from hashed.cli._output import EXIT_CHECK_FAILED, EXIT_SETUP, fail
from hashed.errors import BackendError, BackendUnavailable, ConfigError
from hashed.shipping._client import backend_error

__all__ = ["AdminClient", "connect", "fail_remote", "has_login", "remote"]

_LOGIN_AGAIN = "run hashed login (or set HASHED_ADMIN_KEY to a valid admin key)"
_AUTH_CODES = frozenset({"auth_required", "key_invalid", "key_expired", "key_revoked", "session_invalid"})
_HINTS = {
    "agent_not_found": "list the agents: hashed agent list",
    "key_not_found": "list the keys: hashed keys list",
    "approval_not_found": "list the requests: hashed approvals list --remote --status all",
    "policy_missing": "push one: hashed policy push",
    "approval_decided": "see how it was answered: hashed approvals list --remote --status all",
    "key_inactive": "make a new key instead: hashed keys create",
    "rules_removed": "check the diff (hashed policy diff), then push again with --yes",
    "version_conflict": "someone pushed meanwhile: run hashed policy diff, then push again",
    "agent_disabled": "the agent was disabled (hashed agent delete); register it under a new name",
    "invalid_request": "check the values given (--help lists them)",
    "session_not_found": "list your live sessions: hashed account sessions",
}


class AdminClient:
    """Calls one backend with one admin key (or, during `hashed login --email`, a session cookie)."""

    def __init__(
        self, url: str, admin_key: str | None, *, timeout: float = 15.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"hashed-cli/{__version__}"}
        if admin_key:
            headers["Authorization"] = f"Bearer {admin_key}"
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers, transport=transport)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request; the response when it succeeded, else `BackendError` / `BackendUnavailable`."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.http.request(
                method, path, json=body, params=query, timeout=timeout if timeout is not None else self.http.timeout
            )
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"cannot reach the backend at {self.url}: {exc}") from exc
        check(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request(...)`, then the body as JSON (None for 204)."""
        response = self.request(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()

    @contextlib.contextmanager
    def stream(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Iterator[httpx.Response]:
        """A streamed GET (exports, the live feed); errors as in `request`."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            with self.http.stream(
                "GET", path, params=query, headers=headers, timeout=timeout or self.http.timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    check(response)
                yield response
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"lost the backend at {self.url}: {exc}") from exc

    def agent_id(self, agent: str) -> str:
        """The id of an agent given by id or name (`policy --agent`, `logs export --agent`)."""
        for item in self.json("GET", "/v1/agents"):
            if agent in (item["id"], item["name"]):
                return str(item["id"])
        raise BackendError(f"agent_not_found: no agent {agent} here", status=404, code="agent_not_found")

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check(response: httpx.Response) -> None:
    """Raise the backend's error for a 4xx/5xx response."""
    error = backend_error(response)
    if error is not None:
        raise error


def fail_remote(exc: BackendError, url: str) -> NoReturn:
    """Print what went wrong at the backend and what to do about it; exit 3 (setup) or 1 (refused)."""
    if isinstance(exc, BackendUnavailable):
        if exc.status == 0:
            fail(str(exc), hint=f"start it (hashed backend serve) or log in to the right one: hashed login --url {url}")
        if exc.status == 429:
            wait = f" in {exc.retry_after:g} s" if exc.retry_after is not None else " shortly"
            fail(f"the backend is rate limiting this key: {exc}", hint=f"try again{wait}")
        fail(f"the backend failed ({exc.status}): {exc}", hint=f"try again; if it persists, see the logs of {url}")
    if exc.code in _AUTH_CODES:
        fail(f"the backend at {url} refused the credentials: {exc}", hint=_LOGIN_AGAIN)
    if exc.code == "forbidden":
        fail(f"{exc}", hint="this needs an admin key (hashed_admin_…): hashed login --key …")
    hint = _HINTS.get(exc.code, f"every error code and its meaning: {docs_url('api', 'errors')}")
    if exc.code == "policy_invalid" and isinstance(exc.details, list):
        hint = "; ".join(f"line {d.get('line')}: {d.get('field') or ''} {d.get('message')}" for d in exc.details)
    fail(str(exc), code=EXIT_CHECK_FAILED, hint=hint)


def has_login() -> bool:
    """Whether admin credentials are configured (a stored login or HASHED_ADMIN_KEY)."""
    try:
        return load_credentials() is not None
    except ConfigError:
        return True  # there is a login, just a broken one: using it reports the problem


def connect(timeout: float = 15.0) -> AdminClient:
    """A client for the logged-in backend; exits with what to do when there is no login."""
    try:
        credentials: Credentials | None = load_credentials()
    except ConfigError as exc:
        fail(str(exc))
    if credentials is None:
        fail(
            "not logged in to a backend",
            code=EXIT_SETUP,
            hint="run hashed login --url URL (or set HASHED_BACKEND_URL and HASHED_ADMIN_KEY)",
        )
    return AdminClient(credentials.url, credentials.admin_key, timeout=timeout)


@contextlib.contextmanager
def remote(timeout: float = 15.0) -> Iterator[AdminClient]:
    """A logged-in client whose errors end the command with a next step (use it in a with statement)."""
    client = connect(timeout)
    try:
        yield client
    except BackendError as exc:
        fail_remote(exc, client.url)
    finally:
        client.close()
