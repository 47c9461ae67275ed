"""Recorded HTTP: the client's unit tests replay conversations recorded against the real backend.

Re-record with `python scripts/record_cassettes.py` (it starts a real backend and runs these tests against it
with HASHED_RECORD_CASSETTES set). In CI the cassettes replay; nothing is sent.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr

CASSETTES = Path(__file__).parent / "cassettes"
RECORDING = os.environ.get("HASHED_RECORD_CASSETTES")  # {"url": ..., "admin_key": ...} of a live backend
SECRET_HEADERS = ["authorization", "cookie", "set-cookie", "x-hashed-signature", "x-hashed-nonce"]


@dataclasses.dataclass
class Backend:
    """Where the client talks to: a live backend while recording, a placeholder while replaying."""

    url: str
    admin_key: str

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method, self.url + path, json=body, timeout=30, headers={"Authorization": f"Bearer {self.admin_key}"}
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def agent_key(self, name: str) -> str:
        return str(self.admin("POST", "/v1/keys", {"kind": "agent", "name": name})["key"])


def _scrub(response: dict[str, Any]) -> dict[str, Any]:
    response["headers"].pop("set-cookie", None)
    return response


@pytest.fixture
def recorded(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The test's cassette: recorded live when HASHED_RECORD_CASSETTES is set, else replayed (and required)."""
    path = CASSETTES / f"{request.node.name}.yaml"
    if RECORDING:
        live = json.loads(RECORDING)
        backend = Backend(live["url"], live["admin_key"])
        path.unlink(missing_ok=True)
    else:
        if not path.exists():
            pytest.fail(f"no cassette {path.name}: run python scripts/record_cassettes.py")
        backend = Backend("http://backend.test", "hashed_admin_replayed")
    recorder = vcr.VCR(
        record_mode="all" if RECORDING else "none",
        match_on=["method", "path", "query"],
        filter_headers=SECRET_HEADERS,
        before_record_response=_scrub,
        decode_compressed_response=True,
    )
    with recorder.use_cassette(str(path)):
        yield backend
