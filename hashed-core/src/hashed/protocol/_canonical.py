"""RFC 8785 (JSON Canonicalization Scheme) bytes, fast.

orjson with sorted keys writes exactly the JCS bytes for strings, integers, booleans, null, objects and
arrays, with two exceptions (see shared/testdata/rfc8785/README.md): numbers with a fraction or an exponent
(orjson writes `56.0`, JCS `56`) and object keys beyond the Basic Multilingual Plane (JCS sorts by UTF-16
code units, orjson by code points). So floats are pre-formatted the ECMAScript way (`JsonNumber`, written
through `orjson.Fragment`), and a document with a non-BMP key takes a small pure-Python path. Integers
beyond ±2^53 are outside I-JSON and are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = [
    "MAX_SAFE_INTEGER",
    "JsonNumber",
    "canonical_bytes",
    "canonical_object_bytes",
    "encode_prepared",
    "jcs_number",
    "prepare",
]

MAX_SAFE_INTEGER = 2**53 - 1
_SAFE = MAX_SAFE_INTEGER
_SORT = orjson.OPT_SORT_KEYS


class JsonNumber:
    """A finite float, already written as JCS requires (ECMAScript `Number.prototype.toString`)."""

    __slots__ = ("fragment", "text", "value")

    def __init__(self, value: float) -> None:
        self.value = value
        self.text = jcs_number(value)
        self.fragment = orjson.Fragment(self.text.encode())

    def __repr__(self) -> str:
        return f"JsonNumber({self.text})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def prepared_default(obj: object) -> Any:
    """Orjson's `default` for prepared values: a `JsonNumber` is written as its JCS text."""
    if isinstance(obj, JsonNumber):
        return obj.fragment
    raise TypeError(f"{type(obj).__name__} is not a JSON value")


def jcs_number(value: float) -> str:
    """Write a finite number as ECMAScript does (RFC 8785 section 3.2.2.3).

    Example:
        >>> [jcs_number(x) for x in (56.0, 1e30, 4.5, 2e-3, 1e-27, 333333333.33333329)]
        ['56', '1e+30', '4.5', '0.002', '1e-27', '333333333.3333333']
    """
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number; JSON has no NaN or Infinity")
    if value == 0:
        return "0"
    if value < 0:
        return "-" + jcs_number(-value)
    # repr() gives the shortest digits that round-trip, as ECMAScript requires; only the layout differs.
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    sign = "+" if n - 1 >= 0 else "-"
    head = digits[0] if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{head}e{sign}{abs(n - 1)}"


def prepare(value: Any) -> tuple[Any, bool]:
    """Turn parsed JSON into something `encode_prepared` writes as JCS.

    Returns the prepared value and whether it needs the slow path (a key beyond the BMP).
    Raises ValueError or TypeError for values outside the I-JSON domain.
    """
    if isinstance(value, str) or value is None or value is True or value is False:
        return value, False
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value, False
        # A JSON parser reads a large double written by JCS (1e20 -> 100000000000000000000) as an int:
        # accept it when JCS writes that double with exactly these digits.
        try:
            number = JsonNumber(float(value))
        except OverflowError:
            number = None
        if number is not None and number.text == str(value):
            return number, False
        raise ValueError(f"integer {value} is outside ±2^53, the I-JSON range (write it as a string)")
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return int(value), False
        return JsonNumber(value), False
    if isinstance(value, JsonNumber):
        return value, False
    if isinstance(value, Mapping):
        return _prepare_object(value)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return _prepare_array(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _prepare_object(value: Mapping[Any, Any], omit: frozenset[str] = frozenset()) -> tuple[dict[str, Any], bool]:
    slow = False
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in omit:
            continue
        if not isinstance(key, str):
            raise TypeError(f"object key {key!r} is not a string")
        if not slow and not key.isascii() and any(ord(ch) > 0xFFFF for ch in key):
            slow = True
        # The exact built-in types records are made of are decided here, without a call (the verifier's hot loop).
        kind = type(item)
        if (
            kind is str
            or item is None
            or kind is bool
            or (kind is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER)
        ):
            out[key] = item
            continue
        out[key], item_slow = _prepare_object(item) if kind is dict else prepare(item)
        slow = slow or item_slow
    return out, slow


def _prepare_array(value: Sequence[Any]) -> tuple[list[Any], bool]:
    slow = False
    items = []
    for item in value:
        prepared, item_slow = prepare(item)
        items.append(prepared)
        slow = slow or item_slow
    return items, slow


def encode_prepared(value: Any, slow: bool = False) -> bytes:
    """JCS bytes of a value `prepare` returned (the hot path: one orjson call)."""
    if slow:
        return _slow_encode(value).encode()
    return orjson.dumps(value, default=prepared_default, option=_SORT)


def canonical_object_bytes(value: Mapping[str, Any], omit: frozenset[str]) -> bytes:
    r"""RFC 8785 bytes of the object `value` without its members named in `omit` (no copy is made first).

    Example:
        >>> canonical_object_bytes({"b": 1, "a": 2, "sig": "x"}, frozenset({"sig"}))
        b'{"a":2,"b":1}'
    """
    prepared, slow = _prepare_object(value, omit)
    return encode_prepared(prepared, slow)


def canonical_bytes(value: Any) -> bytes:
    r"""RFC 8785 bytes of any JSON value (the general path, used to verify parsed records).

    Example:
        >>> canonical_bytes({"b": 56.0, "a": [1, "x", None]})
        b'{"a":[1,"x",null],"b":56}'
    """
    prepared, slow = prepare(value)
    return encode_prepared(prepared, slow)


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def _slow_encode(value: Any) -> str:
    if isinstance(value, Mapping):
        parts = (f"{_slow_encode(k)}:{_slow_encode(value[k])}" for k in sorted(value, key=_utf16_key))
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_slow_encode(item) for item in value) + "]"
    if isinstance(value, JsonNumber):
        return value.text
    return orjson.dumps(value).decode()
