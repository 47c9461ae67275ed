"""The sample calls of `hashed policy test`: `--call 'tool {"arg": 1}'` and `--calls FILE`, read strictly.

A call that cannot be read is an error that points at the problem (exit 2), never a guess: evaluating `{}` for
malformed JSON, or a tool named `{"amount":`, would let a CI `expect: deny` pass for the wrong reason.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, NoReturn

import yaml

from hashed.cli._output import EXIT_USAGE, fail

__all__ = ["CALL_FORMS", "load_calls", "parse_call"]

CALL_FORMS = """write it as: transfer_money {"to": "acct-9", "amount": 50}  or: transfer_money to=acct-9 amount=50"""
_FIELDS = ("tool", "args", "agent", "expect")
_EFFECTS = ("allow", "deny", "pending")
_NOT_IN_A_NAME = set("{}[]\"'=")


def _bad_call(text: str, problem: str) -> NoReturn:
    fail(f"--call {text!r}: {problem}", code=EXIT_USAGE, hint=CALL_FORMS)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"argument {name!r} is given twice")
        result[name] = value
    return result


def _scalar(text: str) -> Any:
    """`50` → 50, `true` → True, `null` → None; anything else stays text (`acct-9`)."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text
    return value if value is None or isinstance(value, (bool, int, float)) else text


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON: keep them as text


def parse_call(text: str) -> dict[str, Any]:
    """A `--call`: a tool name, then a JSON object or `name=value` pairs; exits 2 with a pointer if malformed.

    Example:
        >>> parse_call('transfer_money {"to": "acct-9", "amount": 50}')
        {'tool': 'transfer_money', 'args': {'to': 'acct-9', 'amount': 50}}
        >>> parse_call("transfer_money to=acct-9 amount=50")
        {'tool': 'transfer_money', 'args': {'to': 'acct-9', 'amount': 50}}
    """
    stripped = text.strip()
    tool, _, rest = stripped.partition(" ")
    if not tool:
        _bad_call(text, "no tool name")
    if tool[0] in "{[":
        _bad_call(text, "it starts with arguments: the tool's name comes first")
    if _NOT_IN_A_NAME & set(tool):
        _bad_call(text, f"{tool!r} is not a tool name (a space goes between the name and its arguments)")
    rest = rest.strip()
    if not rest:
        return {"tool": tool, "args": {}}
    if rest[0] in "{[":
        try:
            args = json.loads(rest, object_pairs_hook=_unique, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            column = len(stripped) - len(rest) + exc.pos + 1
            where = f"at {rest[exc.pos :]!r}" if exc.pos < len(rest) else "at the end of the call"
            _bad_call(text, f"the arguments are not valid JSON: {exc.msg} at column {column}, {where}")
        except ValueError as exc:
            _bad_call(text, f"the arguments are not valid JSON: {exc}")
        if not isinstance(args, dict):
            _bad_call(text, "the arguments must be a JSON object (names and values), not a list")
        return {"tool": tool, "args": args}
    try:
        parts = shlex.split(rest)
    except ValueError as exc:
        _bad_call(text, f"cannot split the arguments: {exc}")
    pairs: dict[str, Any] = {}
    for part in parts:
        name, equals, value = part.partition("=")
        if not equals or not name:
            _bad_call(text, f"{part!r} is not name=value")
        if name in pairs:
            _bad_call(text, f"argument {name!r} is given twice")
        pairs[name] = _scalar(value)
    return {"tool": tool, "args": pairs}


def _bad_file(path: Path, problem: str) -> NoReturn:
    fail(
        f"{path}: {problem}",
        code=EXIT_USAGE,
        hint="--calls takes a YAML or JSON list like: - {tool: transfer_money, args: {amount: 50}, expect: allow}",
    )


def load_calls(path: Path) -> list[dict[str, Any]]:
    """The calls of a `--calls` file: a list of {tool, args, agent, expect}; exits 2 naming the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{path} does not exist", code=EXIT_USAGE, hint="pass the file of sample calls (YAML or JSON)")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}", code=EXIT_USAGE)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        _bad_file(path, f"not valid YAML: {where}{getattr(exc, 'problem', None) or exc}")
    if not isinstance(loaded, list):
        _bad_file(path, f"must hold a list of calls, not {type(loaded).__name__}")
    return [_case(path, number, item) for number, item in enumerate(loaded, start=1)]


def _case(path: Path, number: int, item: object) -> dict[str, Any]:
    if not isinstance(item, dict):
        _bad_file(path, f"call {number} is {item!r}, not a mapping with a tool")
    unknown = sorted(str(key) for key in item if key not in _FIELDS)
    if unknown:
        _bad_file(path, f"call {number}: unknown field {', '.join(unknown)} (a call has {', '.join(_FIELDS)})")
    tool, args, agent, expect = (item.get(field) for field in _FIELDS)
    if not isinstance(tool, str) or not tool:
        _bad_file(path, f"call {number} has no tool name")
    if args is not None and not isinstance(args, dict):
        _bad_file(path, f"call {number}: args must be a mapping of names to values")
    if agent is not None and not isinstance(agent, str):
        _bad_file(path, f"call {number}: agent must be a name")
    if expect is not None and expect not in _EFFECTS:
        _bad_file(path, f"call {number}: expect is {expect!r}; use allow, deny or pending")
    return {"tool": tool, "args": args or {}, "agent": agent, "expect": expect}
