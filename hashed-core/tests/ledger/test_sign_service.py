"""Signing in the helper process: the same signatures as signing here, in order, and no gap when it dies."""

from __future__ import annotations

import hashlib
import time

from hashed.identity import Identity
from hashed.ledger import _sign_service as service
from hashed.ledger import signing_message
from hashed.ledger._sign_service import SigningPipeline, sign_many

IDENTITY = Identity.from_seed(bytes(range(32)))
DIGESTS = [hashlib.sha256(str(i).encode()).digest() for i in range(300)]
EXPECTED = [IDENTITY.sign(signing_message(d)) for d in DIGESTS]  # Ed25519 is deterministic


def _helper_ready(timeout: float = 20.0) -> bool:
    service._helper.start_in_background()
    deadline = time.monotonic() + timeout
    while service._helper.process is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return service._helper.process is not None


def test_the_helper_signs_exactly_as_this_process_would():
    assert _helper_ready()
    assert service._helper.sign(IDENTITY.seed, DIGESTS) == EXPECTED
    assert sign_many(IDENTITY, DIGESTS) == EXPECTED


def test_a_pipeline_keeps_the_order_of_mixed_chunks():
    assert _helper_ready()
    chunks = [DIGESTS[:3], DIGESTS[3:200], DIGESTS[200:201], DIGESTS[201:256], DIGESTS[256:]]  # small ones sign here
    with SigningPipeline(IDENTITY) as pipeline:
        for chunk in chunks:
            pipeline.add(chunk)
        assert pipeline.results() == EXPECTED


def test_a_dead_helper_never_stops_signing():
    assert _helper_ready()
    process = service._helper.process
    assert process is not None
    process.kill()
    process.wait()
    assert sign_many(IDENTITY, DIGESTS) == EXPECTED  # signed here, and the helper is retired
    assert service._helper.process is None
    with SigningPipeline(IDENTITY) as pipeline:
        pipeline.add(DIGESTS)
        assert pipeline.results() == EXPECTED
    service._helper.forget()  # let later tests start a fresh helper
