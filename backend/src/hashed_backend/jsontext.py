"""JSON text of values parsed from requests.

Request bodies are parsed by the standard library, which accepts integers of any size; orjson (fast) writes
only 64-bit ones. Such values are rare and always refused or inert, so the slow path only handles them.

Example:
    >>> json_text({"a": 2**70})
    '{"a": 1180591620717411303424}'
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["json_text", "parse_escaped", "storable_text"]


def json_text(value: Any) -> str:
    r"""`value` as JSON text: orjson when it can, else the standard library (big integers, lone surrogates)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str)


def storable_text(text: str) -> str:
    r"""`text` with what no database column can hold escaped: NUL as `\x00`, a lone surrogate as `\udXXX`.

    Example:
        >>> storable_text("a\x00b\ud800")
        'a\\x00b\\ud800'
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def parse_escaped(raw: str) -> Any:
    r"""JSON text parsed, with text that cannot be sent as UTF-8 (lone surrogates) shown as backslash escapes.

    Example:
        >>> parse_escaped('{"a": "\\ud800"}')
        {'a': '\\ud800'}
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return _escaped(json.loads(raw))
    except ValueError:
        return storable_text(raw)


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode()
        return value
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    if isinstance(value, dict):
        return {_escaped(key): _escaped(item) for key, item in value.items()}
    return value
