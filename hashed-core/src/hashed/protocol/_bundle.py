"""Offline audit bundles (docs/protocol.md §8.7): an agent's records, its checkpoints and the proofs between them.

One JSON-lines file, so it streams both ways (write it from a ledger page by page, check it in one pass with
memory that grows with the number of checkpoints, not of records), reads with any JSON tool (`jq`), and has no
archive paths to sanitise. The lines, in this order:

    {"type": "header", "format": "hashed.dev/audit-bundle/v1", "origin": …, "key": …, "vkey": …,
     "records": N, "checkpoints": M}
    {"type": "checkpoint", "note": "<signed note>", "proof_from": <previous size>, "proof": ["<base64>", …]}  × M
    {"type": "record", "record": {<the record as exported, §6>}}                                             × N

Checkpoints come before the records so a verifier knows every size it must compute a root at before it reads a
record; they are in increasing size, each with the consistency proof from the one before (empty for the first).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

import orjson

from hashed.errors import ChainBrokenError, TransparencyError
from hashed.protocol._canonical import JsonNumber
from hashed.protocol._checkpoint import Checkpoint, agent_origin
from hashed.protocol._merkle import MemoryNodeStore, consistency_proof
from hashed.protocol._note import NoteVerifier

__all__ = ["BUNDLE_FORMAT", "BundleCheckpoint", "BundleError", "BundleHeader", "BundleReader", "write_bundle"]

BUNDLE_FORMAT = "hashed.dev/audit-bundle/v1"
_MAX_LINE = 1 << 20  # a checkpoint line with its proof is a few kB; a record line is what the agent wrote


class BundleError(TransparencyError, ValueError):
    """The file is not a well-formed audit bundle (the line number says where)."""


@dataclasses.dataclass(frozen=True)
class BundleHeader:
    """The bundle's first line: whose log it is and how much it holds (unsigned: every claim is checked)."""

    origin: str
    key: str
    vkey: str
    records: int
    checkpoints: int


@dataclasses.dataclass(frozen=True)
class BundleCheckpoint:
    """A signed checkpoint note, and the consistency proof from the bundle's previous checkpoint (size `proof_from`)."""

    note: str
    proof_from: int
    proof: tuple[bytes, ...]

    @property
    def checkpoint(self) -> Checkpoint:
        """The note's body, parsed but not yet verified."""
        return Checkpoint.parse(self.note[: self.note.rfind("\n\n") + 1])


def _dumps(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps(value, default=_fragment) + b"\n"


def _fragment(obj: object) -> Any:
    if isinstance(obj, JsonNumber):
        return obj.fragment
    raise TypeError(f"{type(obj).__name__} is not a JSON value")


def write_bundle(
    out: IO[bytes], hashes: Sequence[bytes], first_key: str, notes: Iterable[str], records: Iterable[Any]
) -> int:
    """Write a bundle: `hashes` are the records' leaf hashes (for the proofs), `records` their export form in order.

    Args:
        out: where to write.
        hashes: every record's hash (32 bytes), in seq order.
        first_key: the public key (hex) record 1 carries: the log's origin and the key a verifier pins.
        notes: the signed checkpoints (any order; one per size is kept, the first given).
        records: the records (`to_json()` mappings, or objects with `to_json`), as many as `hashes`.

    Raises:
        ValueError: a checkpoint covers more records than there are (the ledger lost records: verify it).
    """
    store = MemoryNodeStore()
    store.extend(hashes)
    by_size: dict[int, str] = {}
    for note in notes:
        size = BundleCheckpoint(note, 0, ()).checkpoint.size
        if size > store.size:
            raise ValueError(f"a checkpoint covers {size} records but there are {store.size}: records were lost")
        by_size.setdefault(size, note)
    origin = agent_origin(first_key)
    header = {
        "type": "header",
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "key": first_key,
        "vkey": NoteVerifier(origin, bytes.fromhex(first_key)).vkey,
        "records": store.size,
        "checkpoints": len(by_size),
    }
    out.write(_dumps(header))
    previous = 0
    for size in sorted(by_size):
        proof = consistency_proof(store, previous, size) if 0 < previous < size else []
        line = {"type": "checkpoint", "note": by_size[size], "proof_from": previous, "proof": _b64(proof)}
        out.write(_dumps(line))
        previous = size
    count = 0
    for record in records:
        body = record.to_json() if hasattr(record, "to_json") else record
        out.write(_dumps({"type": "record", "record": body}))
        count += 1
    if count != store.size:
        raise ValueError(f"{count} records written for {store.size} hashes")
    return count


def _b64(proof: Iterable[bytes]) -> list[str]:
    return [base64.b64encode(p).decode() for p in proof]


class BundleReader:
    """Reads a bundle in one pass: `header` and `checkpoints` at once, then `records()` streams the rest.

    Raises:
        BundleError: on opening, when the header or a checkpoint line is malformed (garbage, a NUL file,
            another kind of file); `records()` raises `ChainBrokenError` at a malformed record line.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._line = 0
        self.header = self._read_header()
        self.checkpoints = [self._read_checkpoint() for _ in range(self.header.checkpoints)]

    def _next(self) -> dict[str, Any] | None:
        raw = self._handle.readline(_MAX_LINE + 1)
        if not raw:
            return None
        self._line += 1
        if len(raw) > _MAX_LINE:
            raise BundleError(f"line {self._line} is longer than {_MAX_LINE} bytes: not an audit bundle")
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BundleError(
                f"line {self._line} is not JSON: not an audit bundle (hashed logs export --bundle)"
            ) from None
        if not isinstance(value, dict):
            raise BundleError(f"line {self._line} is not a JSON object: not an audit bundle")
        return value

    def _read_header(self) -> BundleHeader:
        line = self._next()
        if line is None or line.get("type") != "header" or line.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"the first line is not a {BUNDLE_FORMAT} header: not an audit bundle")
        try:
            header = BundleHeader(*(line[name] for name in ("origin", "key", "vkey", "records", "checkpoints")))
        except KeyError as exc:
            raise BundleError(f"the header has no {exc.args[0]!r}") from None
        if not all(isinstance(v, str) for v in (header.origin, header.key, header.vkey)) or not all(
            isinstance(v, int) and v >= 0 for v in (header.records, header.checkpoints)
        ):
            raise BundleError("the header's fields have the wrong types")
        return header

    def _read_checkpoint(self) -> BundleCheckpoint:
        line = self._next()
        where = f"line {self._line}"
        if line is None:
            raise BundleError(f"the header announces {self.header.checkpoints} checkpoints; the file ends before")
        note, start, proof = line.get("note"), line.get("proof_from"), line.get("proof")
        if line.get("type") != "checkpoint" or not isinstance(note, str) or not isinstance(start, int):
            raise BundleError(f"{where} is not a checkpoint line (the header announces {self.header.checkpoints})")
        if not isinstance(proof, list) or not all(isinstance(p, str) for p in proof):
            raise BundleError(f"{where}: the proof is not a list of base64 hashes")
        try:
            hashes = tuple(base64.b64decode(p, validate=True) for p in proof)
        except (binascii.Error, ValueError):
            raise BundleError(f"{where}: a proof hash is not base64") from None
        if _b64(hashes) != proof or any(len(h) != 32 for h in hashes):  # one spelling of each hash: no slack bits
            raise BundleError(f"{where}: a proof hash is not 32 bytes in canonical base64")
        return BundleCheckpoint(note, start, hashes)

    def records(self) -> Iterator[dict[str, Any]]:
        """The records, in file order (each line's `record`)."""
        while (line := self._next_record()) is not None:
            yield line

    def _next_record(self) -> dict[str, Any] | None:
        try:
            line = self._next()
        except BundleError as exc:
            raise ChainBrokenError(self._position, str(exc)) from None
        if line is None:
            return None
        record = line.get("record")
        if line.get("type") != "record" or not isinstance(record, dict):
            raise ChainBrokenError(self._position, f"line {self._line} is not a record line", code="malformed")
        return record

    @property
    def _position(self) -> int:
        """The record number of the line just read (1 for the first record line)."""
        return self._line - 1 - len(self.checkpoints)
