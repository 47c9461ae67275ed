"""Every RFC 6962 proof case of transparency-dev/merkle (tests/protocol/rfc6962/): good ones verify, bad ones fail."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from hashed.errors import ProofError
from hashed.protocol import verify_consistency, verify_inclusion

VECTORS = Path(__file__).parent / "rfc6962"


def _cases(kind: str) -> list[tuple[str, dict]]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [(str(path.relative_to(VECTORS)), json.loads(path.read_text(encoding="utf-8"))) for path in files]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(case: dict) -> list[bytes]:
    return [_b64(item) for item in case["proof"] or []]


INCLUSION = _cases("inclusion")
CONSISTENCY = _cases("consistency")


def test_every_case_is_found():
    assert len(INCLUSION) > 50 and len(CONSISTENCY) > 50
    assert any(not case["wantErr"] for _, case in INCLUSION)
    assert any(not case["wantErr"] for _, case in CONSISTENCY)


@pytest.mark.parametrize(("name", "case"), INCLUSION, ids=[name for name, _ in INCLUSION])
def test_inclusion_vector(name, case):
    def verify():
        verify_inclusion(_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case), _b64(case["root"]))

    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


@pytest.mark.parametrize(("name", "case"), CONSISTENCY, ids=[name for name, _ in CONSISTENCY])
def test_consistency_vector(name, case):
    def verify():
        verify_consistency(case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case))

    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()
