"""Signing in the helper process: the same signatures as signing here, in order, and no gap when it dies."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hashed.identity import Identity
from hashed.ledger import _sign_helper as helper
from hashed.ledger import _sign_service as service
from hashed.ledger import signing_message
from hashed.ledger._sign_service import SigningPipeline, sign_many

IDENTITY = Identity.from_seed(bytes(range(32)))
DIGESTS = [hashlib.sha256(str(i).encode()).digest() for i in range(300)]
EXPECTED = [IDENTITY.sign(signing_message(d)) for d in DIGESTS]  # Ed25519 is deterministic


@pytest.fixture
def fresh_helper():
    """A new helper for this test, stopped (not leaked) afterwards."""
    service._helper.stop()
    service._helper.forget()
    yield service._helper
    service._helper.stop()
    service._helper.forget()


def _helper_ready(timeout: float = 20.0) -> bool:
    service._helper.start_in_background()
    deadline = time.monotonic() + timeout
    while service._helper.process is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return service._helper.process is not None


def test_the_helper_signs_exactly_as_this_process_would():
    assert _helper_ready()
    assert service._helper.sign(IDENTITY, DIGESTS) == EXPECTED
    assert sign_many(IDENTITY, DIGESTS) == EXPECTED


def test_a_pipeline_keeps_the_order_of_mixed_chunks():
    assert _helper_ready()
    chunks = [DIGESTS[:3], DIGESTS[3:200], DIGESTS[200:201], DIGESTS[201:256], DIGESTS[256:]]  # small ones sign here
    with SigningPipeline(IDENTITY) as pipeline:
        for chunk in chunks:
            pipeline.add(chunk)
        assert pipeline.results() == EXPECTED


def test_a_dead_helper_never_stops_signing(fresh_helper):
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


def _proc(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="reads the helper's /proc entries (Linux)")
def test_the_key_is_handed_once_never_on_the_command_line_or_in_the_environment(fresh_helper):
    assert _helper_ready()
    process = service._helper.process
    assert process is not None
    assert service._helper.sign(IDENTITY, DIGESTS[:8]) == EXPECTED[:8]  # the key is handed over here
    before = int(re.search(rb"rchar: (\d+)", _proc(process.pid, "io")).group(1))
    for _ in range(20):
        assert service._helper.sign(IDENTITY, DIGESTS[:8]) == EXPECTED[:8]
    after = int(re.search(rb"rchar: (\d+)", _proc(process.pid, "io")).group(1))
    assert after - before < 20 * (32 + 8 * 32)  # fewer bytes than one seed per request
    for name in ("cmdline", "environ"):
        text = _proc(process.pid, name)
        assert IDENTITY.seed not in text and IDENTITY.seed.hex().encode() not in text
    assert b"-I" in _proc(process.pid, "cmdline").split(b"\0")


def test_a_hung_helper_is_replaced_and_nothing_is_lost_or_signed_twice(monkeypatch, fresh_helper):
    monkeypatch.setattr(helper, "_TIMEOUT", 0.5)
    assert _helper_ready()
    hung = service._helper.process
    assert hung is not None
    os.kill(hung.pid, signal.SIGSTOP)  # alive, but never answers
    with SigningPipeline(IDENTITY) as pipeline:
        pipeline.add(DIGESTS[:150])
        pipeline.add(DIGESTS[150:])
        assert pipeline.results() == EXPECTED  # each record signed once, in order, none lost
    assert hung.poll() is not None  # it was killed
    monkeypatch.undo()  # the usual patience for the replacement, which imports PyNaCl first
    assert _helper_ready()
    assert service._helper.process is not hung
    assert service._helper.sign(IDENTITY, DIGESTS) == EXPECTED  # the replacement answers


def test_a_helper_killed_mid_pipeline_is_replaced(fresh_helper):
    assert _helper_ready()
    first = service._helper.process
    assert first is not None
    with SigningPipeline(IDENTITY) as pipeline:
        pipeline.add(DIGESTS[:100])
        first.kill()
        pipeline.add(DIGESTS[100:200])
        pipeline.add(DIGESTS[200:])
        assert pipeline.results() == EXPECTED
    assert _helper_ready()
    assert service._helper.process is not first
    assert service._helper.sign(IDENTITY, DIGESTS) == EXPECTED


AGENT = """
import sys, time
from pathlib import Path
from hashed.ledger import _sign_service as service
from hashed.testing import make_hashed

with make_hashed(Path(sys.argv[1]), durability="immediate") as hashed:
    send = hashed.guard("send")(lambda to: "sent")
    for i in range(300):
        send(f"acct-{i}")
    hashed.flush()
    service._helper.start_in_background()
    deadline = time.monotonic() + 30
    while service._helper.process is None and time.monotonic() < deadline:
        time.sleep(0.01)
    identity = hashed.ledger.identity
    digests = [bytes([i]) * 32 for i in range(16)]
    print("helper signed:", service._helper.sign(identity, digests) == service.sign_many(identity, digests))
"""

EVIL = """
import pathlib, sys
pathlib.Path({marker!r}).write_bytes(sys.stdin.buffer.read(200))
"""


def test_a_hashed_folder_in_the_working_directory_never_runs_as_the_helper(tmp_path):
    work = tmp_path / "work"
    (work / "hashed" / "ledger").mkdir(parents=True)
    marker = tmp_path / "stolen"
    for init in ("hashed/__init__.py", "hashed/ledger/__init__.py", "hashed/ledger/_sign_worker.py"):
        (work / init).write_text(EVIL.format(marker=str(marker)))
    (tmp_path / "agent.py").write_text(AGENT)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "agent.py"), str(tmp_path / "home")],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), "the helper was imported from the current directory"
    assert "helper signed: True" in done.stdout
