"""Asking witnesses to cosign a checkpoint, and refusing to go on without enough of them.

A log (the agent, the backend) calls `request_cosignatures` with its signed checkpoint and a way to produce
consistency proofs; each witness answers with a cosignature, with the size it holds (409, and the client
sends the proof from that size), or with a refusal. When a witness holds a checkpoint this log's history
contradicts, the outcome carries the split view: both signed checkpoints.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable, Mapping, Sequence

import httpx

from hashed.errors import NoteError, ProofError
from hashed.protocol import (
    COSIGNATURE_V1,
    NoteSignature,
    NoteVerifier,
    SignedCheckpoint,
    SplitView,
    find_split_view,
    format_add_checkpoint,
    open_checkpoint,
    parse_signature_lines,
    parse_verifier_key,
)

__all__ = ["CosignatureReport", "NotEnoughCosignatures", "Witness", "WitnessOutcome", "request_cosignatures"]

Prove = Callable[[int, int], Sequence[bytes]]
"""The log's consistency proof from size m to size n (raises LookupError/ValueError for a size it never had)."""


@dataclasses.dataclass(frozen=True)
class Witness:
    """A witness: its submission URL and its cosigning key (a type 0x04 verifier; 0x01 keys are converted)."""

    url: str
    key: NoteVerifier

    @classmethod
    def parse(cls, url: str, vkey: str) -> Witness:
        """A witness from its URL and verifier key string."""
        key = parse_verifier_key(vkey)
        return cls(url.rstrip("/"), key if key.signature_type == COSIGNATURE_V1 else key.as_cosigner())


@dataclasses.dataclass(frozen=True)
class WitnessOutcome:
    """What one witness answered: a cosignature, or why not (and a split view when it holds another history)."""

    witness: str
    status: int
    detail: str
    cosignature: NoteSignature | None = None
    split_view: SplitView | None = None


@dataclasses.dataclass(frozen=True)
class CosignatureReport:
    """The checkpoint note with every cosignature gathered, and each witness's outcome."""

    note: str
    outcomes: tuple[WitnessOutcome, ...]

    @property
    def cosigned(self) -> int:
        """How many witnesses cosigned."""
        return sum(1 for outcome in self.outcomes if outcome.cosignature is not None)

    @property
    def split_views(self) -> list[SplitView]:
        """Evidence of a log showing two histories, from any witness."""
        return [outcome.split_view for outcome in self.outcomes if outcome.split_view is not None]


class NotEnoughCosignatures(NoteError):
    """Fewer witnesses cosigned than required: the checkpoint must not be trusted yet.

    Attributes:
        report: every witness's outcome (and any split view found).
    """

    def __init__(self, report: CosignatureReport, required: int) -> None:
        self.report = report
        lines = [f"{o.witness}: {o.detail}" for o in report.outcomes]
        views = " (split view found: the log showed a witness another history)" if report.split_views else ""
        super().__init__(f"{report.cosigned} of {required} witness cosignatures{views}: " + "; ".join(lines))


def request_cosignatures(
    note: str,
    log: Sequence[NoteVerifier],
    witnesses: Sequence[Witness],
    prove: Prove,
    *,
    required: int,
    sizes: Mapping[str, int] | None = None,
    client: httpx.Client | None = None,
) -> CosignatureReport:
    """Submit a signed checkpoint to each witness; return it cosigned, or raise without `required` cosignatures.

    Args:
        note: the checkpoint note, signed by the log.
        log: the log's verifier keys.
        witnesses: where to ask.
        prove: consistency proofs of the log's tree.
        required: how many cosignatures make the checkpoint trustworthy.
        sizes: the size each witness (by key name) was last known to hold; unknown ones start at 0.
        client: an httpx client to reuse (keep-alive); one is made otherwise.

    Raises:
        NotEnoughCosignatures: fewer than `required` witnesses cosigned.
        NoteError: `note` is not a checkpoint signed by `log`.
    """
    signed = open_checkpoint(note, log)
    own = client or httpx.Client(timeout=10)
    try:
        outcomes = tuple(_ask(own, w, signed, log, prove, (sizes or {}).get(w.key.name, 0)) for w in witnesses)
    finally:
        if client is None:
            own.close()
    lines = "".join(o.cosignature.line for o in outcomes if o.cosignature is not None)
    report = CosignatureReport(signed.raw + lines, outcomes)
    if report.cosigned < required:
        raise NotEnoughCosignatures(report, required)
    return report


def _ask(
    client: httpx.Client,
    witness: Witness,
    signed: SignedCheckpoint,
    log: Sequence[NoteVerifier],
    prove: Prove,
    old: int,
) -> WitnessOutcome:
    name, size = witness.key.name, signed.checkpoint.size
    for _ in range(3):  # a 409 tells the size held: ask once more from it
        proof = [] if old in (0, size) else list(prove(old, size))
        try:
            answer = client.post(f"{witness.url}/add-checkpoint", content=format_add_checkpoint(old, proof, signed.raw))
        except httpx.HTTPError as exc:
            return WitnessOutcome(name, 0, f"unreachable: {exc}")
        if answer.status_code == 200:
            return _cosignature(witness, signed, answer.text)
        held = answer.text.strip()
        if answer.status_code == 409 and answer.headers.get("content-type", "").startswith("text/x.tlog.size"):
            if not held.isdigit():
                return WitnessOutcome(name, 409, f"answered 409 without a size: {held[:80]}")
            if int(held) != old and int(held) <= size:
                old = int(held)
                continue
            return _contradiction(client, witness, signed, log, prove, f"holds size {held}")
        if answer.status_code == 422:
            return _contradiction(client, witness, signed, log, prove, f"refused the proof from size {old}: {held}")
        return WitnessOutcome(name, answer.status_code, f"refused ({answer.status_code}): {held[:200]}")
    return WitnessOutcome(name, 409, "its size kept changing; try again")


def _cosignature(witness: Witness, signed: SignedCheckpoint, body: str) -> WitnessOutcome:
    try:
        lines = parse_signature_lines(body)
    except NoteError as exc:
        return WitnessOutcome(witness.key.name, 200, f"answered lines that are not signatures: {exc}")
    for line in lines:
        if (line.name, line.key_id) == (witness.key.name, witness.key.key_id):
            if witness.key.verify(signed.checkpoint.text, line.signature):
                return WitnessOutcome(witness.key.name, 200, "cosigned", cosignature=line)
            return WitnessOutcome(witness.key.name, 200, "its cosignature does not verify with its key")
    return WitnessOutcome(witness.key.name, 200, "no cosignature from the expected key in the answer")


def _contradiction(
    client: httpx.Client,
    witness: Witness,
    signed: SignedCheckpoint,
    log: Sequence[NoteVerifier],
    prove: Prove,
    detail: str,
) -> WitnessOutcome:
    """The witness holds something else: fetch its checkpoint and decide whether the two can both be true."""
    name = witness.key.name
    origin = urllib.parse.quote(signed.checkpoint.origin, safe="")
    try:
        answer = client.get(f"{witness.url}/checkpoint/{origin}")
        theirs = open_checkpoint(answer.text, log) if answer.status_code == 200 else None
    except (httpx.HTTPError, NoteError):
        theirs = None
    if theirs is None:
        return WitnessOutcome(name, 409, f"{detail}; its checkpoint could not be read or verified")
    small, large = sorted((signed, theirs), key=lambda s: s.checkpoint.size)
    try:
        same = small.checkpoint.size in (0, large.checkpoint.size)
        proof = [] if same else list(prove(small.checkpoint.size, large.checkpoint.size))
        view = find_split_view(small, large, proof)
    except (LookupError, ValueError, ProofError) as exc:
        view = SplitView(signed.checkpoint.origin, small.raw, large.raw, f"this log cannot link the two: {exc}")
    if view is None:
        return WitnessOutcome(name, 409, f"{detail}, consistent with this log: submit the newer checkpoint")
    return WitnessOutcome(name, 409, f"{detail}: split view", split_view=view)
