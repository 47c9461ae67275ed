"""Arguments as they are recorded: JSON-safe, digested, truncated and redacted.

Tool arguments can be anything Python holds. The ledger signs JSON in the RFC 8785 domain, so every value is
mapped once, deterministically, onto that domain: big integers and non-finite floats become strings, bytes
become their length and digest, models and dataclasses their fields, anything else its `repr`.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath
from typing import Any

from hashed.protocol._canonical import MAX_SAFE_INTEGER, JsonNumber, encode_prepared

__all__ = ["REDACTED", "RecordedArgs", "record_args", "shown", "text"]

REDACTED = "[REDACTED]"
MAX_STRING = 4096
MAX_DEPTH = 16


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedArgs:
    """What the ledger keeps of a call's arguments."""

    stored: dict[str, Any]  # truncated and redacted, ready for `encode_prepared`
    digest: str  # SHA-256 hex over the canonical bytes of the full (unredacted) arguments
    slow: bool  # a key beyond the BMP: the record needs the slow canonical path


def text(value: str) -> str:
    r"""`value` as text JSON can carry: a lone surrogate (not Unicode, so not UTF-8) becomes its `\uXXXX` escape.

    Without this, one lone surrogate in an argument would keep every argument of the call out of the record.

    Example:
        >>> text("caf\u00e9"), text("/tmp/" + chr(0xD800) + "x")
        ('café', '/tmp/\\ud800x')
    """
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class _Walk:
    __slots__ = ("long", "slow")

    def __init__(self) -> None:
        self.slow = False
        self.long = False

    def value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                self.long = True
            return value if value.isascii() else text(value)
        if value is None or value is True or value is False:
            return value
        if isinstance(value, int) and not isinstance(value, enum.Enum):
            return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                return str(value)
            if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
                return int(value)
            return JsonNumber(value)
        if depth >= MAX_DEPTH:
            return "<nested too deep>"
        if isinstance(value, Mapping):
            return self.mapping(value, depth + 1)
        if isinstance(value, (list, tuple)):
            return [self.value(item, depth + 1) for item in value]
        if isinstance(value, (set, frozenset)):
            return sorted((self.value(item, depth + 1) for item in value), key=repr)
        return self.other(value, depth)

    def mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = text(key) if isinstance(key, str) else shown(key, str)
            if not self.slow and not name.isascii() and max(name) > "\uffff":
                self.slow = True
            out[name] = self.value(item, depth)
        return out

    def other(self, value: Any, depth: int) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
            return f"<{len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()}>"
        if isinstance(value, enum.Enum):
            return self.value(value.value, depth)
        if isinstance(value, decimal.Decimal):
            return str(value)
        if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
            return value.isoformat()
        if isinstance(value, (uuid.UUID, PurePath)):
            return str(value)
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            try:
                return self.value(dump(mode="json"), depth + 1)
            except Exception:  # noqa: BLE001 - a broken model still gets recorded, as its repr
                return shown(value, repr)[:200]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return self.mapping(fields, depth + 1)
        return shown(value, repr)[:200]


def shown(value: Any, how: Callable[[Any], str]) -> str:
    """`how(value)` (`str` or `repr`) as text JSON can carry; a note when the object's own method fails.

    Whatever a tool is given or returns is recorded: an object whose `__repr__` raises must not keep the call's
    record out of the ledger (a result's, after the tool ran).
    """
    try:
        return text(how(value))
    except Exception:  # noqa: BLE001 - its own method failed; the record says so
        return text(f"<{type(value).__name__} object: its {how.__name__}() failed>")


def _truncate(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else f"{value[:MAX_STRING]}…[{len(value) - MAX_STRING} more chars]"
    if isinstance(value, dict):
        return {k: _truncate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate(v) for v in value]
    return value


def _redact(args: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    out = dict(args)
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in out:
            continue
        if rest and isinstance(out[head], dict):
            out[head] = _redact(out[head], [rest])
        else:
            out[head] = REDACTED
    return out


def record_args(args: Mapping[str, Any], redact: Iterable[str] = ()) -> RecordedArgs:
    """Map `args` onto JSON, digest them whole, then truncate long strings and mask `redact` paths.

    Example:
        >>> r = record_args({"to": "a@b.c", "password": "hunter2", "amount": 5.0}, redact=["password"])
        >>> r.stored
        {'to': 'a@b.c', 'password': '[REDACTED]', 'amount': 5}
    """
    walk = _Walk()
    full = walk.mapping(args, 0)
    digest = hashlib.sha256(encode_prepared(full, walk.slow)).hexdigest()
    stored = _truncate(full) if walk.long else full
    paths = tuple(redact)
    if paths:
        stored = _redact(stored, paths)
    return RecordedArgs(stored, digest, walk.slow)
