"""JSONL exports: one record per line, its body fields plus `hash` and `sig` (docs/protocol.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from hashed.errors import ChainBrokenError
from hashed.protocol._canonical import JsonNumber
from hashed.types import LedgerRecord

__all__ = ["read_export", "write_export"]


def write_export(records: Iterable[LedgerRecord], out: IO[bytes]) -> int:
    """Write `records` as JSONL to `out`; returns how many were written."""
    count = 0
    for record in records:
        out.write(orjson.dumps(record.to_json(), default=_fragment) + b"\n")
        count += 1
    return count


def _fragment(obj: object) -> Any:
    if isinstance(obj, JsonNumber):
        return obj.fragment
    raise TypeError(f"{type(obj).__name__} is not a JSON value")


def read_export(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL export, in file order.

    Raises:
        ChainBrokenError: a line is not a JSON object (its line number stands in for the sequence number).
    """
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ChainBrokenError(number, f"line {number} of {path} is not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise ChainBrokenError(number, f"line {number} of {path} is not a JSON object")
            yield record
