"""Every field of every record kind, checked against docs/protocol.md §2 before a record is verified or stored.

`ChainVerifier` checks the fields every record needs for the chain (presence and type of `v`, `seq`, `prev`,
`ts`, `nonce`, `kind`, `key`, `hash`) and the signature; it does not check their form, nor the fields of each
kind. A record that is signed but malformed (a nonce of `x`, a `ts` of `not-a-time`, a decision without
`effect`) is still not a record of this protocol, so it is refused as `malformed` with the field named.
Extra fields are allowed (a newer core may add some; they are covered by the hash and the signature).

Example:
    >>> problem({"v": 1, "seq": 1, "prev": "0" * 64, "ts": "1", "nonce": "x", "kind": "outcome", "key": "0" * 64,
    ...          "hash": "0" * 64})
    'field nonce must be 32 lowercase hex characters'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["problem"]

_INT64 = 2**63 - 1
_BASE: dict[str, type] = {
    "v": int,
    "seq": int,
    "prev": str,
    "ts": str,
    "nonce": str,
    "kind": str,
    "key": str,
    "hash": str,
}
_HEX = {n: re.compile(f"[0-9a-f]{{{n}}}") for n in (32, 64, 128)}
_TEXT, _OPT_TEXT, _OPT_ANY = "text", "text or null", "any"
_HEX32, _HEX64, _OPT_HEX64 = "hex32", "hex64", "hex64 or null"

# kind -> field -> form (docs/protocol.md §2); `("enum", …)` lists the allowed values.
_KINDS: dict[str, dict[str, Any]] = {
    "decision": {
        "call": _HEX32,
        "tool": _TEXT,
        "framework": _TEXT,
        "run_id": _OPT_TEXT,
        "call_id": _OPT_TEXT,
        "parent_id": _OPT_TEXT,
        "args": _OPT_ANY,
        "args_digest": _HEX64,
        "effect": ("allow", "deny", "pending"),
        "reason": _TEXT,
        "rule": _OPT_TEXT,
        "policy": _HEX64,
        "shadow": bool,
        "approval": _OPT_TEXT,
    },
    "outcome": {
        "call": _HEX32,
        "tool": _TEXT,
        "status": ("ok", "error"),
        "error": _OPT_TEXT,
        "result_digest": _OPT_HEX64,
        "duration_ns": int,
    },
    "approval": {
        "call": _HEX32,
        "approval": _TEXT,
        "requested_by": _TEXT,
        "verdict": ("approved", "denied", "expired"),
        "by": _OPT_TEXT,
        "comment": _OPT_TEXT,
    },
    "key_rotation": {"new_key": _HEX64, "proof": "hex128"},
}


def _fits(value: Any, form: Any) -> bool:
    if form is _OPT_ANY:
        return True
    if isinstance(form, tuple):
        return value in form and isinstance(value, str)
    if form is bool:
        return isinstance(value, bool)
    if form is int:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _INT64
    if value is None and form in (_OPT_TEXT, _OPT_HEX64):
        return True
    if form in (_TEXT, _OPT_TEXT):
        return isinstance(value, str)
    size = {_HEX32: 32, _HEX64: 64, _OPT_HEX64: 64, "hex128": 128}[form]
    return isinstance(value, str) and _HEX[size].fullmatch(value) is not None


def _describe(form: Any) -> str:
    if isinstance(form, tuple):
        return "one of " + ", ".join(form)
    if form is bool:
        return "true or false"
    if form is int:
        return "a non-negative integer"
    if form in (_HEX32, _HEX64, "hex128", _OPT_HEX64):
        size = {_HEX32: "32", _HEX64: "64", "hex128": "128", _OPT_HEX64: "64"}[form]
        tail = " (or null)" if form == _OPT_HEX64 else ""
        return f"{size} lowercase hex characters{tail}"
    return "a string (or null)" if form == _OPT_TEXT else "a string"


def problem(record: Mapping[str, Any]) -> str | None:
    """What is wrong with the record's fields, or None.

    Missing or mistyped chain fields are left to `ChainVerifier` (it names them), as is `sig`.
    """
    for name, kind in _BASE.items():
        if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool):
            return None  # the verifier reports it, in its own words
    if record["seq"] < 1:
        return f"field seq must be 1 or more (got {record['seq']})"
    for name in ("prev", "key", "hash"):
        if _HEX[64].fullmatch(record[name]) is None:
            return f"field {name} must be 64 lowercase hex characters"
    if _HEX[32].fullmatch(record["nonce"]) is None:
        return "field nonce must be 32 lowercase hex characters"
    ts = record["ts"]
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 19 and int(ts) <= _INT64):
        return "field ts must be nanoseconds since the epoch as a decimal string (at most 19 digits)"
    if not isinstance(record.get("agent"), str):
        return "field agent must be a string"
    fields = _KINDS.get(record["kind"])
    if fields is None:
        return None  # unknown kind: the verifier names it
    for name, form in fields.items():
        if name not in record:
            return f"{record['kind']} record without field {name}"
        if not _fits(record[name], form):
            return f"field {name} of a {record['kind']} record must be {_describe(form)}"
    return None
