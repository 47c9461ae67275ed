"""Checking an audit bundle with no network and no database: what `hashed verify BUNDLE` decides (§8.7).

One pass over the records checks the chain (hashes, links, signatures, signed key rotations) and computes the
Merkle root at every size a checkpoint names, and the key in force there; then each checkpoint must be signed by
that key (a rotation moves it), each consistency proof must link it to the one before, and the records must be the
history every checkpoint signed. The first failure is the verdict, named:

`not_a_bundle`, `wrong_key` (not the pinned agent), `chain_broken`, `other_log`, `bad_checkpoint`, `truncated`
(records cut off), `rewritten`, `forked` (two histories signed), `inconsistent` (a proof fails),
`bad_cosignature`, `witnesses` (fewer cosignatures than required), `empty`, or `ok`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import IO

from hashed.errors import ChainBrokenError, NoteError, ProofError
from hashed.protocol._audit import judge
from hashed.protocol._bundle import BundleCheckpoint, BundleReader
from hashed.protocol._checkpoint import Checkpoint, SignedCheckpoint, agent_origin, open_checkpoint
from hashed.protocol._merkle import EMPTY_ROOT, CompactRange, verify_consistency
from hashed.protocol._note import COSIGNATURE_V1, NoteVerifier
from hashed.protocol._verify import ChainVerifier, VerifyReport

__all__ = ["BundleReport", "verify_bundle"]


@dataclasses.dataclass(frozen=True)
class BundleReport:
    """The verdict on a bundle.

    Attributes:
        verdict: `ok` or the name of the first check that failed (see the module docstring).
        reason: the verdict in words.
        chain: the chain's report (records, head, every key the chain was signed with).
        checkpoints: how many signed checkpoints verified.
        covered: records the newest checkpoint covers (the rest are signed but not yet checkpointed).
        cosigned: the trusted witnesses that cosigned the newest checkpoint.
        evidence: signed notes that prove a failure (a fork, a rewrite, a cut tail): keep them.
    """

    verdict: str
    reason: str
    chain: VerifyReport = dataclasses.field(default_factory=VerifyReport)
    checkpoints: int = 0
    covered: int = 0
    cosigned: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return self.verdict == "ok"


def verify_bundle(
    handle: IO[bytes],
    *,
    key: str | None = None,
    witnesses: Sequence[NoteVerifier] = (),
    min_witnesses: int = 0,
    also: Sequence[str] = (),
) -> BundleReport:
    """Check a bundle read from `handle`.

    Args:
        handle: the bundle, opened in binary mode.
        key: the public key (hex) the agent's chain must start with; None trusts the bundle's own (say so).
        witnesses: trusted witness keys; their cosignatures are checked wherever they appear.
        min_witnesses: how many of `witnesses` must have cosigned the newest checkpoint.
        also: more signed checkpoints of this log held elsewhere (an earlier audit, another bundle).
    """
    try:
        reader = BundleReader(handle)
        head = reader.header
        if (
            head.origin != agent_origin(head.key)
            or head.vkey != NoteVerifier(head.origin, bytes.fromhex(head.key)).vkey
        ):
            return BundleReport("not_a_bundle", "the header's origin or verifier key is not its key's")
        bodies = [c.checkpoint for c in reader.checkpoints]
        extra = [BundleCheckpoint(note, 0, ()).checkpoint for note in also]
    except ValueError as exc:  # BundleError, NoteError, a bad hex key: not a bundle this version reads
        return BundleReport("not_a_bundle", str(exc))
    if key is not None and key.lower() != head.key:
        return BundleReport("wrong_key", f"the bundle is the log of key {head.key[:16]}…, not of {key[:16]}…")
    bad = _order(reader.checkpoints, bodies) or _strangers(head.origin, [*bodies, *extra])
    if bad is not None:
        return bad
    chain, roots, keys_at = _walk(reader, head.key, {b.size for b in [*bodies, *extra]})
    if chain.error is not None:
        return BundleReport("chain_broken", f"{chain.error} ({chain.error.code})", chain)
    if not chain.count:
        return BundleReport("empty", "the bundle holds no records: it proves nothing", chain)
    if chain.count != head.records:
        cut = f"the file holds {chain.count} records but its header announces {head.records}: it was cut short"
        return BundleReport("truncated", cut, chain)
    cosigners = [w if w.signature_type == COSIGNATURE_V1 else w.as_cosigner() for w in witnesses]
    opened = _open_all(reader.checkpoints, [*also], head.origin, keys_at, chain.keys, cosigners)
    if isinstance(opened, BundleReport):
        return dataclasses.replace(opened, chain=chain)
    own, held = opened
    verdict = judge([*own, *held], roots, chain) if own or held else None
    if verdict is not None and not verdict.ok:
        name = "forked" if verdict.verdict == "fork" else verdict.verdict
        return BundleReport(name, verdict.reason, chain, len(own), evidence=verdict.evidence)
    failed = _proofs(reader.checkpoints, own)
    if failed is not None:
        return dataclasses.replace(failed, chain=chain)
    newest = own[-1] if own else None
    cosigned = tuple(newest.cosigned_by(cosigners)) if newest is not None else ()
    covered = newest.checkpoint.size if newest is not None else 0
    if len(cosigned) < min_witnesses:
        have = ", ".join(cosigned) or "none"
        why = f"the newest checkpoint (size {covered}) has {len(cosigned)} of the {min_witnesses} witness "
        return BundleReport("witnesses", why + f"cosignatures required ({have})", chain, len(own), covered, cosigned)
    reason = f"{chain.count} records; the first {covered} are the history the agent signed in {len(own)} checkpoints"
    return BundleReport("ok", reason, chain, len(own), covered, cosigned)


def _order(entries: Sequence[BundleCheckpoint], bodies: Sequence[Checkpoint]) -> BundleReport | None:
    previous = 0
    for number, (entry, body) in enumerate(zip(entries, bodies, strict=True), start=1):
        if body.size <= previous and number > 1:
            return BundleReport("not_a_bundle", f"checkpoint {number}: sizes must increase ({previous}, {body.size})")
        if entry.proof_from != previous:
            return BundleReport(
                "not_a_bundle", f"checkpoint {number}: its proof is from {entry.proof_from}, not {previous}"
            )
        previous = body.size
    return None


def _strangers(origin: str, bodies: Sequence[Checkpoint]) -> BundleReport | None:
    for body in bodies:
        if body.origin != origin:
            return BundleReport("other_log", f"a checkpoint of {body.origin}, not of {origin}")
    return None


def _walk(
    reader: BundleReader, first_key: str, wanted: set[int]
) -> tuple[VerifyReport, dict[int, bytes], dict[int, str]]:
    """Verify the chain; the root and the key in force at every wanted size the records reach."""
    roots: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in wanted else {}
    keys_at: dict[int, str] = {0: first_key} if 0 in wanted else {}
    tree = CompactRange()
    verifier = ChainVerifier(key=first_key, require_signatures=True)
    try:
        for record in reader.records():
            verifier.check(record)
            tree.append(bytes.fromhex(record["hash"]))
            if tree.size in wanted:
                roots[tree.size], keys_at[tree.size] = tree.root(), verifier.key or first_key
    except ChainBrokenError as exc:
        verifier.report.error = exc
    return verifier.report, roots, keys_at


def _open_all(
    entries: Sequence[BundleCheckpoint],
    held: Sequence[str],
    origin: str,
    keys_at: dict[int, str],
    chain_keys: Sequence[str],
    cosigners: Sequence[NoteVerifier],
) -> tuple[list[SignedCheckpoint], list[SignedCheckpoint]] | BundleReport:
    """Each checkpoint opened with the key in force at its size (any of the chain's keys past the records' end)."""
    opened: list[list[SignedCheckpoint]] = [[], []]
    notes = [(f"checkpoint {n}", e.note, 0) for n, e in enumerate(entries, start=1)]
    notes += [(f"the checkpoint held elsewhere ({n})", note, 1) for n, note in enumerate(held, start=1)]
    for label, note, bucket in notes:
        size = BundleCheckpoint(note, 0, ()).checkpoint.size
        log = [NoteVerifier(origin, bytes.fromhex(k)) for k in ([keys_at[size]] if size in keys_at else chain_keys)]
        try:
            signed = open_checkpoint(note, log)
        except NoteError as exc:
            why = f"{label} (size {size}) is not signed by the agent's key in force at that size: {exc}"
            return BundleReport("bad_checkpoint", why, evidence=(note,))
        if cosigners:
            try:
                signed = open_checkpoint(note, [*log, *cosigners])
            except NoteError as exc:
                return BundleReport("bad_cosignature", f"{label} (size {size}): {exc}", evidence=(note,))
        opened[bucket].append(signed)
    return opened[0], opened[1]


def _proofs(entries: Sequence[BundleCheckpoint], signed: Sequence[SignedCheckpoint]) -> BundleReport | None:
    for number in range(1, len(signed)):
        old, new, proof = signed[number - 1].checkpoint, signed[number].checkpoint, entries[number].proof
        if not old.size:
            continue  # every tree extends the empty one
        try:
            verify_consistency(old.size, new.size, old.root, new.root, proof)
        except ProofError as exc:
            why = f"checkpoint {number + 1} (size {new.size}) is not shown to extend size {old.size}: {exc}"
            return BundleReport("inconsistent", why, evidence=(signed[number - 1].raw, signed[number].raw))
    return None
