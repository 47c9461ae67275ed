"""The witness driven over real HTTP on loopback: it cosigns what extends its view and keeps evidence of forks."""

from __future__ import annotations

import base64
import socket

import httpx
import pytest

from hashed.identity import Identity
from hashed.protocol import (
    Checkpoint,
    MemoryNodeStore,
    NoteVerifier,
    agent_origin,
    consistency_proof,
    format_add_checkpoint,
    leaf_hash,
    sign_checkpoint,
    verify_cosigned,
)
from hashed.witness import NotEnoughCosignatures, Witness, WitnessServer, WitnessStore, request_cosignatures

AGENT = Identity.from_seed(bytes(range(32)))
ORIGIN = agent_origin(AGENT.public_key)
LOG_KEY = NoteVerifier(ORIGIN, bytes.fromhex(AGENT.public_key))


class Log:
    """An agent's tree and its signed checkpoints."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.store = MemoryNodeStore()
        self.store.extend(leaves)

    def note(self) -> str:
        return sign_checkpoint(Checkpoint(ORIGIN, self.store.size, self.store.root()), AGENT)

    def prove(self, size1: int, size2: int) -> list[bytes]:
        return consistency_proof(self.store, size1, size2)


def _leaves(n: int, fork_at: int | None = None) -> list[bytes]:
    return [leaf_hash(b"fork %d" % i if i == fork_at else b"record %d" % i) for i in range(n)]


def _serve(tmp_path, name: str, seed: int) -> WitnessServer:
    store = WitnessStore(tmp_path / f"{seed}.db")
    store.add_log(LOG_KEY.vkey)
    server = WitnessServer(("127.0.0.1", 0), name, Identity.from_seed(bytes([seed]) * 32), store)
    server.start()
    return server


@pytest.fixture
def witnesses(tmp_path):
    servers = [_serve(tmp_path, f"witness{i}.example", 40 + i) for i in range(2)]
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()
        server.store.close()


def _witness(server: WitnessServer) -> Witness:
    key = NoteVerifier(server.name, bytes.fromhex(server.identity.public_key), 0x04)
    return Witness.parse(server.url, key.vkey)


def test_witnesses_cosign_a_growing_log_and_the_result_verifies_offline(witnesses):
    keys = [_witness(w) for w in witnesses]
    first = Log(_leaves(5))
    request_cosignatures(first.note(), [LOG_KEY], keys, first.prove, required=2)
    grown = Log(_leaves(12))
    report = request_cosignatures(grown.note(), [LOG_KEY], keys, grown.prove, required=2)  # 409 5, then a proof
    assert report.cosigned == 2 and not report.split_views
    signed = verify_cosigned(report.note, [LOG_KEY], [w.key for w in keys], required=2)
    assert signed.checkpoint.size == 12
    assert witnesses[0].store.latest(ORIGIN)[0].size == 12


def test_a_forked_history_is_refused_and_kept_as_evidence(witnesses):
    keys = [_witness(w) for w in witnesses]
    honest = Log(_leaves(8))
    request_cosignatures(honest.note(), [LOG_KEY], keys, honest.prove, required=2)
    forked = Log(_leaves(12, fork_at=3))  # record 4 rewritten, everything after re-chained and re-signed
    with pytest.raises(NotEnoughCosignatures, match="0 of 1 witness cosignatures") as caught:
        request_cosignatures(forked.note(), [LOG_KEY], keys[:1], forked.prove, required=1)
    [view] = caught.value.report.split_views
    assert "size 8 is not a prefix of size 12" in view.reason
    assert view.first.startswith(Checkpoint(ORIGIN, 8, honest.store.root()).text)
    assert view.second.startswith(Checkpoint(ORIGIN, 12, forked.store.root()).text)
    [(origin, kind, detail, held, offered, proof, _)] = witnesses[0].store.evidence()
    assert (origin, kind) == (ORIGIN, "unproven") and held.startswith(honest.note().split("\n\n")[0])
    assert offered == forked.note() and proof
    assert witnesses[0].store.latest(ORIGIN)[0].size == 8  # it still holds the honest view


def test_the_same_size_with_another_root_is_a_split_view(witnesses):
    keys = [_witness(w) for w in witnesses]
    honest, forked = Log(_leaves(6)), Log(_leaves(6, fork_at=5))
    request_cosignatures(honest.note(), [LOG_KEY], keys, honest.prove, required=2)
    with pytest.raises(NotEnoughCosignatures) as caught:
        request_cosignatures(forked.note(), [LOG_KEY], keys, forked.prove, required=1)
    views = caught.value.report.split_views
    assert len(views) == 2 and all("two different roots for tree size 6" in v.reason for v in views)
    assert [row[1] for row in witnesses[1].store.evidence()] == ["split view"]


def test_the_protocol_answers_of_the_specification(witnesses):
    server = witnesses[0]
    log = Log(_leaves(4))
    url = f"{server.url}/add-checkpoint"
    with httpx.Client() as client:

        def post(old: int, proof: list[bytes], note: str) -> httpx.Response:
            return client.post(url, content=format_add_checkpoint(old, proof, note))

        first = post(0, [], log.note())
        assert first.status_code == 200 and first.text.startswith(f"— {server.name} ")
        again = post(0, [], log.note())
        assert (again.status_code, again.text, again.headers["content-type"]) == (409, "4\n", "text/x.tlog.size")
        grown = Log(_leaves(9))
        assert post(9, [], grown.note()).status_code == 409
        assert post(10, [], grown.note()).status_code == 400  # old is beyond the checkpoint
        bad = [bytes([grown.prove(4, 9)[0][0] ^ 1]) + grown.prove(4, 9)[0][1:], *grown.prove(4, 9)[1:]]
        assert post(4, bad, grown.note()).status_code == 422
        stranger = Identity.from_seed(bytes([99]) * 32)
        forged = sign_checkpoint(Checkpoint(ORIGIN, 9, grown.store.root()), stranger)
        assert post(4, grown.prove(4, 9), forged).status_code == 403
        other = sign_checkpoint(Checkpoint("example.com/other", 9, grown.store.root()), stranger)
        assert post(0, [], other).status_code == 404
        assert client.post(url, content=b"old 01\n\n" + log.note().encode()).status_code == 400
        assert client.post(url, content=b"old 4\n" + b"AAAA\n" * 64 + b"\n" + log.note().encode()).status_code == 400
        assert post(4, grown.prove(4, 9), grown.note()).status_code == 200
        held = client.get(f"{server.url}/checkpoint/{ORIGIN.replace('/', '%2F')}")
        assert held.status_code == 200
        verify_cosigned(held.text, [LOG_KEY], [_witness(server).key], required=1)
        assert base64.b64encode(grown.store.root()).decode() in held.text


def test_demanding_more_witnesses_than_answer_refuses_the_checkpoint(witnesses):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    dead = Witness(f"http://127.0.0.1:{dead_port}", _witness(witnesses[1]).key)
    log = Log(_leaves(3))
    with pytest.raises(NotEnoughCosignatures, match="1 of 2 witness cosignatures.*unreachable"):
        request_cosignatures(log.note(), [LOG_KEY], [_witness(witnesses[0]), dead], log.prove, required=2)
