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

__all__ = ["json_text"]


def json_text(value: Any) -> str:
    """`value` as JSON text (orjson when it can, the standard library for integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str)
