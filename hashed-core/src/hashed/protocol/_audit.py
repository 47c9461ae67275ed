"""Records against signed checkpoints: what `hashed verify --checkpoint FILE` decides, with no network.

A chain shows that the records it holds were not altered; a checkpoint the log signed earlier shows what the
history was at its size. Together they name what happened:

- `truncated`: the checkpoint covers more records than were given (the tail was cut off);
- `rewritten`: the records' tree at the checkpoint's size has another root (history was changed, even if it
  was re-chained and re-signed);
- `fork`: the log signed two checkpoints that cannot both be true (two histories shown to two parties);
- `chain_broken` (the chain itself fails, `ChainBrokenError.code` says how) and `other_log` (a checkpoint of
  another agent's log).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hashed.errors import ChainBrokenError
from hashed.protocol._checkpoint import SignedCheckpoint, agent_origin
from hashed.protocol._merkle import EMPTY_ROOT, CompactRange
from hashed.protocol._verify import ChainVerifier, VerifyReport

__all__ = ["CheckpointReport", "verify_against_checkpoint"]


@dataclasses.dataclass(frozen=True)
class CheckpointReport:
    """The verdict on records against checkpoints.

    Attributes:
        verdict: `ok`, `truncated`, `rewritten`, `fork`, `chain_broken` or `other_log`.
        reason: the verdict in words.
        chain: the chain verification report (records counted, head, keys, the chain error if any).
        covered: records the newest matching checkpoint covers; `chain.count - covered` are not covered yet.
        evidence: the signed checkpoints that prove the verdict (notes as received).
    """

    verdict: str
    reason: str
    chain: VerifyReport
    covered: int = 0
    evidence: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the records are the history every checkpoint signed."""
        return self.verdict == "ok"


def verify_against_checkpoint(
    records: Iterable[Mapping[str, Any]],
    checkpoint: SignedCheckpoint,
    *,
    also: Sequence[SignedCheckpoint] = (),
    key: str | None = None,
) -> CheckpointReport:
    """Check a whole chain (from seq 1) against a verified checkpoint, and any others of the same log.

    Args:
        records: the records in order, as exported.
        checkpoint: a checkpoint whose note verified (`open_checkpoint` or `verify_cosigned`).
        also: more checkpoints of the same log (from witnesses, an earlier audit, another verifier).
        key: the public key the chain must start with, when known.
    """
    checkpoints = [checkpoint, *also]
    wanted = {c.checkpoint.size for c in checkpoints}
    roots: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in wanted else {}
    tree = CompactRange()
    verifier = ChainVerifier(key=key)
    try:
        for record in records:
            verifier.check(record)
            tree.append(bytes.fromhex(record["hash"]))
            if tree.size in wanted:
                roots[tree.size] = tree.root()
    except ChainBrokenError as exc:
        verifier.report.error = exc
    chain = verifier.report
    if chain.error is not None:
        return CheckpointReport("chain_broken", f"{chain.error} ({chain.error.code})", chain)
    if chain.keys:
        origin = agent_origin(chain.keys[0])
        strangers = [c for c in checkpoints if c.checkpoint.origin != origin]
        if strangers:
            return CheckpointReport(
                "other_log", f"checkpoint of {strangers[0].checkpoint.origin}, not of {origin}", chain
            )
    return judge(checkpoints, roots, chain)


def judge(checkpoints: list[SignedCheckpoint], roots: dict[int, bytes], chain: VerifyReport) -> CheckpointReport:
    """The verdict on verified checkpoints, given the records' root at each size they reached (bundles reuse it)."""
    by_size: dict[int, SignedCheckpoint] = {}
    for c in checkpoints:
        seen = by_size.setdefault(c.checkpoint.size, c)
        if seen.checkpoint.root != c.checkpoint.root:
            reason = f"the log signed two roots for {c.checkpoint.size} records: it showed two histories"
            return CheckpointReport("fork", reason, chain, evidence=(seen.raw, c.raw))
    matching = [c for c in checkpoints if roots.get(c.checkpoint.size) == c.checkpoint.root]
    differing = [c for c in checkpoints if c.checkpoint.size in roots and c not in matching]
    if matching and differing:
        good, bad = matching[0], differing[0]
        reason = (
            f"the log signed a checkpoint of these records (size {good.checkpoint.size}) and one of another history "
            f"(size {bad.checkpoint.size}): it showed two histories"
        )
        return CheckpointReport("fork", reason, chain, evidence=(good.raw, bad.raw))
    if differing:
        bad = differing[0]
        reason = (
            f"the first {bad.checkpoint.size} records are not the history the log signed: records were changed, "
            "inserted or removed and the chain rebuilt"
        )
        return CheckpointReport("rewritten", reason, chain, evidence=(bad.raw,))
    beyond = [c for c in checkpoints if c.checkpoint.size not in roots]
    if beyond:
        longest = max(beyond, key=lambda c: c.checkpoint.size)
        reason = (
            f"the log signed {longest.checkpoint.size} records but only {chain.count} are here: "
            f"records {chain.count + 1}–{longest.checkpoint.size} were cut off"
        )
        return CheckpointReport("truncated", reason, chain, evidence=(longest.raw,))
    covered = max(c.checkpoint.size for c in checkpoints)
    reason = f"{chain.count} records; the first {covered} are the history the log signed"
    return CheckpointReport("ok", reason, chain, covered=covered)
