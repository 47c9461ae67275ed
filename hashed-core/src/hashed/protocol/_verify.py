"""Checking a chain of records: signatures, hashes, continuity and key rotations.

The same `ChainVerifier` checks a local ledger, a JSONL export (`hashed verify`) and, in the backend, each
batch an agent sends, continuing from the last record stored for that agent.

Ed25519 verification is most of the cost, and PyNaCl releases the GIL while it runs. So a verifier can
defer it (`check_signatures=False`): every other check still runs in order, and the deferred signatures
(`ChainVerifier.pending`) are checked afterwards on several threads (`_signatures.py`). A
signature's validity depends on nothing but its key, hash and bytes, so deciding the records again with
those results (`signatures=`) reproduces sequential verification exactly: same first bad record, same code.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from typing import Any

import nacl.exceptions
import nacl.signing

from hashed.errors import ChainBrokenError
from hashed.protocol._record import (
    GENESIS,
    PROTOCOL_VERSION,
    record_hash,
    rotation_message,
    verify_signature,
)
from hashed.protocol._signatures import Signature, verify_signatures_parallel

__all__ = ["KINDS", "ChainVerifier", "VerifyReport", "verify_records"]

_HEX = {64: re.compile("[0-9a-f]{64}"), 128: re.compile("[0-9a-f]{128}")}
_WINDOW = 1024  # records decided between two rounds of parallel signature checks (bounds memory)
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "v": int,
    "seq": int,
    "prev": str,
    "ts": str,
    "nonce": str,
    "kind": str,
    "key": str,
    "hash": str,
}
KINDS = frozenset({"decision", "outcome", "approval", "key_rotation"})


def _is_hex(value: str, length: int) -> bool:
    return _HEX[length].fullmatch(value) is not None


@dataclasses.dataclass
class VerifyReport:
    """What a verification found.

    Attributes:
        count: records checked (good ones, up to the first bad one).
        first_seq / last_seq: the range checked.
        head: hash of the last good record.
        keys: every public key the chain was signed with, in order (more than one after a rotation).
        unsigned: records not signed yet (allowed only when verifying a live ledger).
        first_unsigned: the first of them, or None.
        error: the first bad record, or None when everything verified.
    """

    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str = GENESIS
    keys: list[str] = dataclasses.field(default_factory=list)
    unsigned: int = 0
    first_unsigned: int | None = None
    error: ChainBrokenError | None = None

    @property
    def ok(self) -> bool:
        """True when no record failed."""
        return self.error is None


class ChainVerifier:
    """Feed records in order; the first one that does not fit raises `ChainBrokenError`.

    Args:
        key: the public key the chain must start with (pin it when you know it: the backend does).
            None trusts the first record's key, and the report lists it.
        seq: the sequence number of the last record already trusted (0 for a whole chain).
        head: that record's hash (GENESIS for a whole chain).
        require_signatures: refuse unsigned records (exports, backends) or count them (a live ledger).
        from_anywhere: accept a first record whose `seq`/`prev` are not the continuation of `seq`/`head`;
            for a slice of an export (its first record is then only as good as its signature).
        check_signatures: False defers each Ed25519 check: the record is taken as signed correctly and its
            `Signature` appended to `pending`, to be checked later (`verify_signatures_parallel`).
        signatures: signatures already checked (their results); these are not checked again.

    Example:
        >>> verifier = ChainVerifier(key=None)
        >>> verifier.check({"v": 1, "seq": 2})
        Traceback (most recent call last):
        hashed.errors.ChainBrokenError: record 2: missing field prev
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        seq: int = 0,
        head: str = GENESIS,
        require_signatures: bool = True,
        from_anywhere: bool = False,
        check_signatures: bool = True,
        signatures: Mapping[Signature, bool] | None = None,
    ) -> None:
        self.key = key
        self.seq = seq
        self.head = head
        self.require_signatures = require_signatures
        self.check_signatures = check_signatures
        self.pending: list[Signature] = []
        self._signatures: Mapping[Signature, bool] = signatures if signatures is not None else {}
        self._from_anywhere = from_anywhere
        self._nonces: set[str] = set()  # every nonce so far: a record replayed under a new seq reuses one
        self.report = VerifyReport(head=head, keys=[key] if key else [])

    def check(self, record: Mapping[str, Any]) -> None:  # noqa: C901 - one early exit per rule, in order
        """Verify one record against the chain so far, then advance past it."""
        seq = record.get("seq")
        where = seq if isinstance(seq, int) else self.seq + 1

        def fail(reason: str, code: str = "malformed") -> ChainBrokenError:
            return ChainBrokenError(where, reason, code=code)

        for name, kind in _REQUIRED.items():
            if name not in record:
                raise fail(f"missing field {name}")
            if not isinstance(record[name], kind) or isinstance(record[name], bool):
                raise fail(f"field {name} has the wrong type ({type(record[name]).__name__})")
        if record["v"] != PROTOCOL_VERSION:
            raise fail(f"protocol version {record['v']} is not {PROTOCOL_VERSION}")
        if record["kind"] not in KINDS:
            raise fail(f"unknown kind {record['kind']!r}")
        if not self._from_anywhere:
            if record["seq"] != self.seq + 1:
                expected = self.seq + 1
                raise fail(
                    f"expected sequence {expected}: a record is missing, repeated or out of order", "out_of_order"
                )
            if record["prev"] != self.head:
                raise fail(f"prev does not match the hash of record {self.seq}: the chain is broken", "chain_broken")
        self._from_anywhere = False
        try:
            actual = record_hash(record)
        except (TypeError, ValueError) as exc:
            raise fail(f"not canonical JSON: {exc}") from exc
        if actual != record["hash"]:
            raise fail("hash does not match the record's contents: the record was altered", "hash_mismatch")
        if self.key is None:
            self.key = record["key"]
            self.report.keys.append(record["key"])
        if record["key"] != self.key:
            raise fail(
                f"signed with key {record['key'][:16]}… but the chain's key is {self.key[:16]}… (no rotation)",
                "wrong_key",
            )
        sig = record.get("sig")
        if sig is None:
            if self.require_signatures:
                raise fail("not signed", "unsigned")
            self.report.unsigned += 1
            if self.report.first_unsigned is None:
                self.report.first_unsigned = record["seq"]
        elif not isinstance(sig, str) or not _is_hex(sig, 128) or not self._signed(Signature(self.key, actual, sig)):
            raise fail(f"signature does not verify with key {self.key[:16]}…: forged or altered", "bad_signature")
        nonces = self._nonces
        if record["nonce"] in nonces:
            raise fail(
                "nonce already used by an earlier record: a replayed record, which a backend refuses", "nonce_reused"
            )
        nonces.add(record["nonce"])
        if record["kind"] == "key_rotation":
            self._rotate(record, fail)
        self.seq, self.head = record["seq"], actual
        report = self.report
        report.count += 1
        report.first_seq = record["seq"] if report.first_seq is None else report.first_seq
        report.last_seq, report.head = record["seq"], actual

    def _signed(self, signature: Signature) -> bool:
        known = self._signatures.get(signature)
        if known is not None:
            return known
        if self.check_signatures:
            return verify_signature(*signature)
        self.pending.append(signature)
        return True

    def _twin(self, signatures: Mapping[Signature, bool]) -> ChainVerifier:
        """A verifier in this one's state that checks signatures now, knowing `signatures`."""
        twin = ChainVerifier(
            key=self.key,
            seq=self.seq,
            head=self.head,
            require_signatures=self.require_signatures,
            from_anywhere=self._from_anywhere,
            signatures=signatures,
        )
        twin.report = dataclasses.replace(self.report, keys=list(self.report.keys))
        twin._nonces = self._nonces  # shared, not copied (a copy per window would cost O(n) each): `verify_records`
        return twin

    def _rotate(self, record: Mapping[str, Any], fail: Callable[[str, str], ChainBrokenError]) -> None:
        new_key, proof = record.get("new_key"), record.get("proof")
        if not isinstance(new_key, str) or not _is_hex(new_key, 64):
            raise fail("key_rotation without a valid new_key", "bad_rotation")
        if not isinstance(proof, str) or not _is_hex(proof, 128):
            raise fail("key_rotation without a valid proof", "bad_rotation")
        try:
            nacl.signing.VerifyKey(bytes.fromhex(new_key)).verify(
                rotation_message(record["key"], new_key), bytes.fromhex(proof)
            )
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            raise fail("key_rotation proof is not the new key's signature", "bad_rotation") from None
        self.key = new_key
        self.report.keys.append(new_key)


def verify_records(
    records: Iterable[Mapping[str, Any]],
    *,
    key: str | None = None,
    require_signatures: bool = True,
    from_anywhere: bool = False,
    executor: Executor | None = None,
) -> VerifyReport:
    """Verify records in order and report; stops at the first bad one (see `VerifyReport.error`).

    With an `executor` (threads), signatures are checked on it in parallel; the report is the same.

    Example:
        >>> verify_records([]).ok
        True
    """
    verifier = ChainVerifier(
        key=key, require_signatures=require_signatures, from_anywhere=from_anywhere, check_signatures=executor is None
    )
    if executor is None:
        _feed(verifier, records)
        return verifier.report
    it = iter(records)
    while window := list(itertools.islice(it, _WINDOW)):
        before = verifier._twin({})
        _feed(verifier, window)
        results = verify_signatures_parallel(verifier.pending, executor)
        if not all(results):
            # Decide the window again knowing every signature: it stops at the first bad record. Its records that
            # passed added their nonces to the set `before` shares: take them out first.
            passed = verifier.report.count - before.report.count
            verifier._nonces.difference_update(record["nonce"] for record in window[:passed])
            verifier = before._twin(dict(zip(verifier.pending, results, strict=True)))
            _feed(verifier, window)
            return verifier.report
        verifier.pending.clear()
        if verifier.report.error is not None:
            break
    return verifier.report


def _feed(verifier: ChainVerifier, records: Iterable[Mapping[str, Any]]) -> None:
    try:
        for record in records:
            verifier.check(record)
    except ChainBrokenError as exc:
        verifier.report.error = exc
