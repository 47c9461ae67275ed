"""docs/protocol.md's test vectors: rebuilt here, they must match the committed file and the document."""

from __future__ import annotations

import importlib.util
import json

import orjson

from hashed.protocol import canonical_bytes, leaf_hash, record_hash, verify_records, verify_signature

from ..conftest import REPO

DOCS = REPO / "docs"


def _vectors_module():
    spec = importlib.util.spec_from_file_location("protocol_vectors", REPO / "scripts" / "protocol_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vectors_are_reproducible_and_committed():
    committed = json.loads((DOCS / "protocol-vectors.json").read_text(encoding="utf-8"))
    assert _vectors_module().vectors() == committed


def test_the_document_shows_every_vector():
    document = (DOCS / "protocol.md").read_text(encoding="utf-8")
    committed = json.loads((DOCS / "protocol-vectors.json").read_text(encoding="utf-8"))
    for record in committed["records"]:
        assert record["canonical"] in document
        assert f"hash `{record['hash']}`" in document
        assert f"sig `{record['sig']}`" in document


def test_vectors_verify_as_a_chain_with_the_pinned_key():
    committed = json.loads((DOCS / "protocol-vectors.json").read_text(encoding="utf-8"))
    records = []
    for vector in committed["records"]:
        body = orjson.loads(vector["canonical"])
        assert canonical_bytes(body) == vector["canonical"].encode()
        assert leaf_hash(vector["canonical"].encode()).hex() == vector["hash"] == record_hash(body)
        assert verify_signature(committed["public_key"], vector["hash"], vector["sig"])
        records.append({**body, "hash": vector["hash"], "sig": vector["sig"]})
    report = verify_records(records, key=committed["public_key"])
    assert report.ok, report.error
    assert report.count == 3
    assert report.keys[-1] == records[2]["new_key"]
