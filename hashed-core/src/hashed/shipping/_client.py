"""The agent's HTTP client for the backend (docs/api.md): signed requests, typed answers, clear errors.

Every call either returns the backend's answer, raises `BackendUnavailable` (could not reach it, or it said
"later": retry), or raises `BackendError` (it refused: retrying the same request will not help).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from hashed._version import __version__
from hashed.errors import BackendError, BackendUnavailable
from hashed.protocol._requests import SigningIdentity, registration_message, signed_headers

__all__ = ["BackendClient", "PolicyAnswer", "backend_error"]


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyAnswer:
    """The agent's policy as the backend serves it."""

    yaml: str
    etag: str
    version: int
    source: str


class BackendClient:
    """Talks to one backend as one agent.

    Args:
        base_url: e.g. `http://127.0.0.1:8400`.
        api_key: an agent API key (`hashed_agent_…`).
        identity: returns the agent's current identity (it may rotate).
        timeout: seconds per request (long polls add their wait).
        transport: an httpx transport (tests inject one; default: the network).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        identity: Callable[[], SigningIdentity],
        *,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._identity = identity
        self._timeout = timeout
        self._transport = transport
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": f"hashed-core/{__version__}"},
        )

    def with_timeout(self, timeout: float) -> BackendClient:
        """The same client with another per-request timeout."""
        return BackendClient(self.base_url, self._key, self._identity, timeout=timeout, transport=self._transport)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        signed: bool = True,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request; return the response for 2xx/304, raise `BackendError`/`BackendUnavailable` else."""
        content = b"" if body is None else orjson.dumps(body)
        request = self._http.build_request(
            method,
            path,
            params=params,
            content=content or None,
            headers={
                "Authorization": f"Bearer {self._key}",
                **({"Content-Type": "application/json"} if content else {}),
                **(headers or {}),
            },
            timeout=self._timeout if timeout is None else timeout,
        )
        if signed:
            target = request.url.raw_path.decode("ascii")  # exactly what goes on the request line
            request.headers.update(signed_headers(self._identity(), method, target, content))
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"cannot reach the backend at {self.base_url}: {exc}") from exc
        error = backend_error(response)
        if error is not None:
            raise error
        return response

    # -- agent operations --------------------------------------------------------------------------------

    def register(self, name: str) -> dict[str, Any]:
        """Register (or confirm) this agent by proving it holds its key; returns the agent."""
        identity = self._identity()
        challenge = self.request(
            "POST", "/v1/agents/challenge", body={"name": name, "public_key": identity.public_key}, signed=False
        ).json()
        signature = identity.sign(registration_message(challenge["challenge"], name, identity.public_key)).hex()
        answer: dict[str, Any] = self.request(
            "POST",
            "/v1/agents/register",
            signed=False,
            body={
                "challenge_id": challenge["id"],
                "name": name,
                "public_key": identity.public_key,
                "signature": signature,
            },
        ).json()
        return answer

    def backend_key(self) -> str:
        """The backend's Ed25519 public key (hex), which signs approval answers."""
        return str(self.request("GET", "/v1/backend-key", signed=False).json()["public_key"])

    def policy(self, etag: str | None) -> PolicyAnswer | None:
        """The agent's policy, or None when it is unchanged since `etag`.

        Raises:
            BackendError: code `policy_missing` when the organisation has no policy for this agent.
        """
        headers = {"If-None-Match": etag} if etag else None
        response = self.request("GET", "/v1/policy", headers=headers)
        if response.status_code == 304:
            return None
        data = response.json()
        return PolicyAnswer(
            data["yaml"], response.headers.get("ETag", f'"{data["hash"]}"'), int(data["version"]), str(data["source"])
        )

    def send(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Ship records (export form, oldest first); returns `{"results": [...], "head": {...}}`."""
        answer: dict[str, Any] = self.request("POST", "/v1/logs/batch", body={"records": records}).json()
        return answer

    def send_checkpoint(self, note: str) -> dict[str, Any]:
        """Send a checkpoint the agent signed; returns it cosigned by the backend (`{"status", "size", "note"…}`).

        Raises:
            BackendError: code `checkpoint_ahead` (the backend holds fewer records: send it later), `forked` (its
                tree has another root at that size: kept there as evidence), or another refusal.
        """
        answer: dict[str, Any] = self.request("POST", "/v1/logs/checkpoint", body={"note": note}).json()
        return answer

    def create_approval(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Ask the organisation's people to approve a call; returns the request (pending)."""
        answer: dict[str, Any] = self.request("POST", "/v1/approvals", body=dict(request)).json()
        return answer

    def approval(self, approval_id: str, wait: float = 0) -> dict[str, Any]:
        """One approval request, after waiting up to `wait` seconds for an answer."""
        params = {"wait": int(wait)} if wait else None
        answer: dict[str, Any] = self.request(
            "GET", f"/v1/approvals/{approval_id}", params=params, timeout=self._timeout + wait
        ).json()
        return answer

    def close(self) -> None:
        """Close connections."""
        self._http.close()

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def backend_error(response: httpx.Response) -> BackendError | None:
    """The error a backend response stands for (docs/api.md, "Errors"), or None for a success.

    429 and 5xx are `BackendUnavailable` (come back later, after `Retry-After`); other 4xx are `BackendError`.
    """
    if response.status_code < 400:
        return None
    code, message, details = str(response.status_code), response.reason_phrase, None
    try:
        error = response.json().get("error") or {}
        code, message = str(error.get("code") or code), str(error.get("message") or message)
        details = error.get("details")
    except (ValueError, AttributeError):
        message = response.text[:200] or message
    if response.status_code == 429 or response.status_code >= 500:
        return BackendUnavailable(
            f"{code}: {message}", status=response.status_code, code=code, retry_after=_retry_after(response)
        )
    return BackendError(f"{code}: {message}", status=response.status_code, code=code, details=details)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
