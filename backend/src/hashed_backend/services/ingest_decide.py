"""Deciding a batch of one agent's records against its stored chain: pure, and cheap except for the signatures.

Verification is `hashed.ledger.ChainVerifier`, continued from the agent's stored head (`seq`, `hash`, key).
Each record is decided in order:

- `seq` below 1: refused (`malformed`, the reason says so);
- `seq` at or below the verified head: `duplicate` if it is the stored record, field for field, else refused
  (`conflict`: a tampered resend, or a different record that would fork the chain; quarantined and logged);
- a nonce this agent already used: refused (`nonce_reused`);
- a field that is not of the form docs/protocol.md gives it (`record_fields.problem`): refused (`malformed`);
- otherwise `ChainVerifier.check`: stored, or refused with the verifier's reason.

Ed25519 checks dominate the cost and PyNaCl releases the GIL, so the verifier defers them
(`check_signatures=False`) and they run on the thread pool at once (`hashed.ledger.verify_signatures`). A
signature's validity depends on the record alone, so when one fails the batch is decided again knowing
every result, which is exactly the verdict of checking each signature in turn.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from hashed.errors import ChainBrokenError
from hashed.protocol import GENESIS, ChainVerifier, Signature, verify_signatures
from hashed_backend.jsontext import storable_text
from hashed_backend.services.record_fields import problem

__all__ = ["INT64", "AgentChain", "Decided", "decide", "decide_verified", "refusal_code", "seq_of"]

INT64 = 2**63 - 1  # the largest value a column of integers holds (a seq, a timestamp)
_MIN_CHUNK = 16
_ROUNDS = 3


def refusal_code(error: ChainBrokenError) -> str:
    """The API code for a verifier failure: the core's stable `ChainBrokenError.code`.

    Example:
        >>> refusal_code(ChainBrokenError(3, "hash does not match", code="hash_mismatch"))
        'hash_mismatch'
    """
    return error.code


@dataclass(frozen=True, slots=True)
class AgentChain:
    """What is stored of an agent's chain: where verification continues from."""

    agent_id: str
    key: str
    seq: int
    head: str


@dataclass(slots=True)
class Decided:
    """The fate of each record of a batch, the chain after the stored ones, and the signatures still to check."""

    results: list[dict[str, Any]] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    seq: int = 0
    head: str = GENESIS
    keys: list[str] = field(default_factory=list)
    pending: list[Signature] = field(default_factory=list)


def seq_of(record: Mapping[str, Any]) -> int | None:
    """The record's `seq` when it is an integer a column can hold, else None."""
    seq = record.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and -INT64 <= seq <= INT64 else None


def _refuse(out: Decided, index: int, seq: int | None, code: str, reason: str) -> None:
    out.results.append({"seq": seq, "status": "refused", "code": code, "reason": storable_text(reason)})
    out.refused.append(index)


def decide(
    records: Sequence[Mapping[str, Any]],
    chain: AgentChain,
    stored: Mapping[int, Mapping[str, Any]],
    used_nonces: frozenset[str],
    signatures: Mapping[Signature, bool] | None = None,
    *,
    defer: bool = True,
) -> Decided:
    """Decide every record in order, knowing `signatures`; pure, so it can run on a worker thread.

    `stored`: the stored records (as ingested) of the batch's seqs at or below the chain's head.
    `defer`: a signature not in `signatures` is taken as good and listed in `pending` (else it is checked).
    """
    verifier = ChainVerifier(
        key=chain.key, seq=chain.seq, head=chain.head, check_signatures=not defer, signatures=signatures
    )
    out = Decided(seq=chain.seq, head=chain.head, pending=verifier.pending)
    accepted: dict[int, Mapping[str, Any]] = {}
    nonces: set[str] = set()
    for index, record in enumerate(records):
        seq = seq_of(record)
        if seq is not None and seq < 1:
            _refuse(out, index, seq, "malformed", f"record {seq}: seq must be 1 or more (the first record is 1)")
            continue
        if seq is not None and seq <= verifier.seq:
            known = accepted.get(seq, stored.get(seq))
            if known is not None and known == record:
                out.results.append({"seq": seq, "status": "duplicate", "code": None, "reason": None})
            else:
                reason = (
                    f"record {seq} is already stored with other contents: a tampered resend, or a fork of the chain"
                )
                _refuse(out, index, seq, "conflict", reason)
            continue
        nonce = record.get("nonce")
        if isinstance(nonce, str) and (nonce in used_nonces or nonce in nonces):
            _refuse(
                out, index, seq, "nonce_reused", f"record {seq}: nonce already used by another record of this agent"
            )
            continue
        wrong = problem(record)
        if wrong is not None:
            _refuse(out, index, seq, "malformed", f"record {seq}: {wrong}")
            continue
        try:
            verifier.check(record)
        except ChainBrokenError as exc:
            _refuse(out, index, seq, refusal_code(exc), str(exc))
            continue
        accepted[record["seq"]] = record
        nonces.add(record["nonce"])
        out.results.append({"seq": seq, "status": "stored", "code": None, "reason": None})
        out.stored.append(index)
    out.seq, out.head, out.keys = verifier.seq, verifier.head, verifier.report.keys
    return out


async def decide_verified(
    records: Sequence[Mapping[str, Any]],
    chain: AgentChain,
    stored: Mapping[int, Mapping[str, Any]],
    used_nonces: frozenset[str],
    pool: Executor,
    threads: int,
) -> Decided:
    """`decide`, with the deferred signatures checked on `threads` pool threads at once, until none is left."""
    known: dict[Signature, bool] = {}
    for _ in range(_ROUNDS):
        decided = decide(records, chain, stored, used_nonces, known)
        if not decided.pending:
            return decided
        results = await _verify(decided.pending, pool, threads)
        known.update(zip(decided.pending, results, strict=True))
        if all(results):
            decided.pending = []  # every signature it took as good is checked now
            return decided
        # A signature failed: its record is refused, so what follows it is decided again, knowing more.
    # Failures keep uncovering records not reached before (forks of refused records): check the rest in turn.
    job = functools.partial(decide, records, chain, stored, used_nonces, known, defer=False)
    return await asyncio.get_running_loop().run_in_executor(pool, job)


async def _verify(signatures: Sequence[Signature], pool: Executor, threads: int) -> list[bool]:
    count = max(1, min(threads, len(signatures) // _MIN_CHUNK))
    size = -(-len(signatures) // count)
    loop = asyncio.get_running_loop()
    jobs = [
        loop.run_in_executor(pool, verify_signatures, signatures[start : start + size])
        for start in range(0, len(signatures), size)
    ]
    return [ok for part in await asyncio.gather(*jobs) for ok in part]
