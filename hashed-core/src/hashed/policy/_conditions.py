"""`when` conditions compiled once into plain Python checks (no `eval`, no interpreter on the hot path).

A compiled check takes the call's arguments and returns None when it holds, or a sentence saying why not.
"""

from __future__ import annotations

import decimal
import fnmatch
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from hashed.policy._schema import Condition

__all__ = ["Check", "as_number", "compile_when", "lookup", "non_finite", "numeric_names"]

Check = Callable[[Mapping[str, Any]], "str | None"]
_MISSING = object()
_ADDRESS = re.compile(r"<([^<>]+)>\s*$")
_NUMERIC = ("lt", "le", "gt", "ge")


def lookup(args: Mapping[str, Any], path: str) -> Any:
    """The argument at a dotted `path` (`payload.to`), or a sentinel when it is absent."""
    value: Any = args
    for part in path.split("."):
        if (type(value) is dict or isinstance(value, Mapping)) and part in value:  # a dict skips the ABC's check
            value = value[part]
        else:
            return _MISSING
    return value


def is_missing(value: Any) -> bool:
    """Whether `lookup` found nothing."""
    return value is _MISSING


def as_number(value: Any) -> float | None:
    """`value` as a number, accepting numeric strings (models often send "500"); None if it is not one.

    An integer too large for a float comes back as an infinity, which `non_finite` then refuses.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, decimal.Decimal)):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            return None
        return number if number == number else None
    return None


def non_finite(value: Any, *, numeric: bool) -> bool:
    """Whether `value` is NaN, an infinity, or a number beyond float range (strings too where `numeric`).

    Such a value satisfies no limit and no condition: NaN compares false with everything, so `amount > max`
    would let it through. The engine denies the call instead (docs/policy.md, "Numbers").

    Example:
        >>> non_finite(float("nan"), numeric=False), non_finite("inf", numeric=True), non_finite("Nan", numeric=False)
        (True, True, False)
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, decimal.Decimal):
        return not value.is_finite() or not math.isfinite(float(value))
    if isinstance(value, int):
        return numeric and as_number(value) in (math.inf, -math.inf)
    if numeric and isinstance(value, str):
        try:
            return not math.isfinite(float(value.strip().replace("_", "")))
        except (ValueError, OverflowError):
            return False
    return False


def numeric_names(when: Mapping[str, Condition] | None) -> set[str]:
    """The arguments a `when` block compares as numbers (lt, le, gt, ge)."""
    return {name for name, cond in (when or {}).items() if any(getattr(cond, op) is not None for op in _NUMERIC)}


def _domains(value: Any) -> list[str] | None:
    addresses = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for address in addresses:
        if not isinstance(address, str):
            return None
        match = _ADDRESS.search(address)
        text = (match.group(1) if match else address).strip()
        if text.count("@") != 1:
            return None
        out.append(text.rsplit("@", 1)[1].lower().rstrip("."))
    return out


def _in_domains(domain: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(domain, pattern.lower()) for pattern in patterns)


def _compile_one(name: str, cond: Condition) -> Check:  # noqa: C901 - one clause per operator
    tests: list[Callable[[Any], str | None]] = []
    numeric = [(op, getattr(cond, op)) for op in ("lt", "le", "gt", "ge") if getattr(cond, op) is not None]
    symbols = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
    compare = {"lt": float.__lt__, "le": float.__le__, "gt": float.__gt__, "ge": float.__ge__}
    fields = cond.model_fields_set
    if "eq" in fields:
        tests.append(lambda v: None if v == cond.eq else f"must equal {cond.eq!r}")
    if "ne" in fields:
        tests.append(lambda v: None if v != cond.ne else f"must not equal {cond.ne!r}")
    for op, bound in numeric:

        def number_test(v: Any, op: str = op, bound: float = float(bound)) -> str | None:
            number = as_number(v)
            if number is None:
                return "is not a number"
            return None if compare[op](number, bound) else f"must be {symbols[op]} {bound:g}"

        tests.append(number_test)
    if cond.in_ is not None:
        allowed = cond.in_
        tests.append(lambda v: None if v in allowed else f"must be one of {allowed!r}")
    if cond.not_in is not None:
        banned = cond.not_in
        tests.append(lambda v: None if v not in banned else f"must not be one of {banned!r}")
    if cond.matches is not None:
        pattern = re.compile(cond.matches)
        tests.append(lambda v: None if isinstance(v, str) and pattern.search(v) else f"must match {pattern.pattern!r}")
    if cond.not_matches is not None:
        anti = re.compile(cond.not_matches)
        tests.append(
            lambda v: None if isinstance(v, str) and not anti.search(v) else f"must not match {anti.pattern!r}"
        )
    if cond.domain_in is not None:
        good = cond.domain_in

        def domain_test(v: Any) -> str | None:
            domains = _domains(v)
            if domains is None:
                return "is not an e-mail address"
            bad = [d for d in domains if not _in_domains(d, good)]
            return f"has domain {bad[0]!r}, not one of {good!r}" if bad else None

        tests.append(domain_test)
    if cond.domain_not_in is not None:
        blocked = cond.domain_not_in

        def domain_block(v: Any) -> str | None:
            domains = _domains(v)
            if domains is None:
                return "is not an e-mail address"
            bad = [d for d in domains if _in_domains(d, blocked)]
            return f"has blocked domain {bad[0]!r}" if bad else None

        tests.append(domain_block)
    present = cond.present

    def check(args: Mapping[str, Any]) -> str | None:
        value = lookup(args, name)
        if value is _MISSING:
            if present is False:
                return None
            return f"argument {name} is missing"
        if present is False:
            return f"argument {name} must be absent"
        for test in tests:
            problem = test(value)
            if problem is not None:
                return f"{name}={_short(value)} {problem}"
        return None

    return check


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def compile_when(when: Mapping[str, Condition] | None) -> Check | None:
    """One check for a whole `when` block (all conditions must hold), or None when there is none."""
    if not when:
        return None
    checks = [_compile_one(name, cond) for name, cond in when.items()]

    def check(args: Mapping[str, Any]) -> str | None:
        for one in checks:
            problem = one(args)
            if problem is not None:
                return problem
        return None

    return check
