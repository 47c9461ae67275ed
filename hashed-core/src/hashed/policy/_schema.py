"""The policy document, as pydantic models: what `.hashed/policy.yaml` may say (docs/policy.md explains it)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

__all__ = ["ApprovalSpec", "Condition", "Limit", "Policy", "Rate", "Rule", "Window", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> float:
    """Seconds in `30s`, `15m`, `1h`, `1d`, `1w` or a plain number of seconds.

    Example:
        >>> parse_duration("15m"), parse_duration(90)
        (900.0, 90.0)
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m, 1h or 1d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration; write it as 30s, 15m, 1h, 1d or 1w")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be longer than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration), AllowInfNan(False)]
# pydantic accepts ints too; one type keeps errors to one per field. A bound of NaN or infinity would hold nothing.
Number = Annotated[float, AllowInfNan(False)]
_STRICT = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def check_glob(pattern: str) -> str:
    """A tool or agent glob (`*`, `?`, `[abc]`, `[!abc]`), refused when a `[` is never closed.

    fnmatch would read `delete_[` as the literal text `delete_[`, so the rule would silently match nothing.

    Example:
        >>> check_glob("delete_*")
        'delete_*'
        >>> check_glob("delete_[")
        Traceback (most recent call last):
        ValueError: glob 'delete_[' opens a [ set that is never closed; write [[] for a literal [
    """
    if not pattern:
        raise ValueError("a glob cannot be empty")
    at = 0
    while (at := pattern.find("[", at)) >= 0:
        close = at + 1
        if close < len(pattern) and pattern[close] == "!":
            close += 1
        if close < len(pattern) and pattern[close] == "]":  # a leading ] belongs to the set
            close += 1
        close = pattern.find("]", close)
        if close < 0:
            raise ValueError(f"glob {pattern!r} opens a [ set that is never closed; write [[] for a literal [")
        at = close + 1
    return pattern


Globs = Annotated[list[Annotated[str, AfterValidator(check_glob)]], BeforeValidator(_as_list)]


class Condition(BaseModel):
    """Tests on one argument; every test given must hold. Numbers compare as numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    eq: Any = None
    ne: Any = None
    lt: Number | None = None
    le: Number | None = None
    gt: Number | None = None
    ge: Number | None = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    matches: str | None = None
    not_matches: str | None = None
    domain_in: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    domain_not_in: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    present: bool | None = None

    @field_validator("matches", "not_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError(
                "a condition needs at least one test (eq, ne, lt, le, gt, ge, in, not_in, matches, "
                "not_matches, domain_in, domain_not_in, present)"
            )
        return self


When = dict[str, Condition]


class Window(BaseModel):
    """A rolling window over one argument: its sum per `per`."""

    model_config = _STRICT
    per: Duration
    max_sum: Number = Field(gt=0)


class Limit(BaseModel):
    """Bounds on one numeric argument: per call (`min`, `max`) and summed over a rolling `window`."""

    model_config = _STRICT
    max: Number | None = None
    min: Number | None = None
    window: Window | None = None

    @model_validator(mode="after")
    def _something(self) -> Limit:
        if self.max is None and self.min is None and self.window is None:
            raise ValueError("a limit needs max, min or window")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class Rate(BaseModel):
    """At most `max_calls` allowed calls per rolling `per`, per agent."""

    model_config = _STRICT
    per: Duration
    max_calls: int = Field(gt=0)


class ApprovalSpec(BaseModel):
    """A human must approve: always, or when `when` holds. Unanswered after `timeout`: `on_timeout`."""

    model_config = _STRICT
    when: When | None = None
    timeout: Duration = 900.0
    on_timeout: Literal["deny", "allow"] = "deny"


def _approval(value: Any) -> Any:
    if value is True or value == "always":
        return {}
    return value


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class Rule(BaseModel):
    """One rule: which calls it matches (`tools`, `agents`, `when`) and what it does with them."""

    model_config = _STRICT
    id: str
    description: str | None = None
    tools: Globs = Field(min_length=1)
    agents: Globs | None = None
    effect: Literal["allow", "deny"]
    reason: str | None = None
    when: When | None = None
    limits: dict[str, Limit] | None = None
    rate: Rate | None = None
    approval: Annotated[ApprovalSpec | None, BeforeValidator(_approval)] = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                "a rule id is 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"
            )
        return value

    @model_validator(mode="after")
    def _deny_has_no_constraints(self) -> Rule:
        if self.effect == "deny":
            extra = [name for name in ("limits", "rate", "approval") if getattr(self, name) is not None]
            if extra:
                raise ValueError(f"a deny rule cannot have {', '.join(extra)}: they constrain allow rules")
        return self


class Policy(BaseModel):
    """A whole policy document."""

    model_config = _STRICT
    version: Literal[1] = 1
    default: Literal["allow", "deny"] = "deny"
    mode: Literal["enforce", "shadow"] = "enforce"
    redact: list[str] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Policy:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice; every rule needs its own id")
            seen.add(rule.id)
        return self
