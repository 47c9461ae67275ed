"""Deciding one call against a policy, with no I/O: match, deny-overrides, limits, approvals.

Precedence (docs/policy.md), as in Cedar where `forbid` overrides `permit`:

1. A rule matches a call when its `tools` and `agents` globs match and every `when` condition holds.
2. Any matching deny rule denies (the first one in file order names the reason).
3. No matching allow rule: the policy's `default` decides.
4. Otherwise every matching allow rule's `limits` and `rate` apply (any violation denies), and if any of them
   asks for `approval`, the call waits for a human (pending). Else it is allowed.

Rolling windows need the ledger's counters, so the engine only lists them (`Verdict.windows`); the core checks
them inside the same transaction that records the decision, so that concurrent processes cannot overshoot.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hashed._args import shown
from hashed.policy._conditions import Check, as_number, compile_when, is_missing, lookup, non_finite, numeric_names
from hashed.policy._loader import policy_hash
from hashed.policy._schema import ApprovalSpec, Policy, Rule
from hashed.types import Effect

__all__ = ["PolicyEngine", "Verdict", "WindowCheck"]

_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """One rolling-window bound to check against the ledger's usage counters."""

    scope: str
    per_ns: int
    max_calls: int | None
    max_sum: float | None
    amount: float
    rule_id: str
    label: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the policy says about a call before rolling windows are counted."""

    effect: Effect
    reason: str
    rule_id: str | None
    windows: tuple[WindowCheck, ...] = ()
    approval: ApprovalSpec | None = None


def _globs(patterns: list[str] | None) -> tuple[frozenset[str], re.Pattern[str] | None]:
    if patterns is None:
        return frozenset(), re.compile(".*", re.S)
    exact = frozenset(p for p in patterns if not any(ch in p for ch in "*?["))
    wild = [fnmatch.translate(p) for p in patterns if p not in exact]
    return exact, re.compile("|".join(wild)) if wild else None


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class _Compiled:
    __slots__ = (
        "agents",
        "allowed",
        "approval",
        "approval_when",
        "deny",
        "id",
        "limits",
        "numbers",
        "plain",
        "rate",
        "reason",
        "rule",
        "tested",
        "tools",
        "when",
    )

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.id = rule.id
        self.deny = rule.effect == "deny"
        self.tools = _globs(rule.tools)
        self.agents = _globs(rule.agents)
        self.when: Check | None = compile_when(rule.when)
        self.limits = list((rule.limits or {}).items())
        self.rate = rule.rate
        self.approval = rule.approval
        approval_when = rule.approval.when if rule.approval else None
        self.approval_when = compile_when(approval_when)
        self.reason = rule.reason or rule.description
        self.allowed = Verdict(Effect.ALLOW, f"allowed by rule {rule.id}", rule.id)
        # The arguments this rule reads as numbers, and those it only compares: a non-finite value in either
        # satisfies nothing, so the call is denied before the rule is applied (`unbounded`).
        numbers = {name for name, _ in self.limits} | numeric_names(rule.when) | numeric_names(approval_when)
        self.numbers = tuple(sorted(numbers))
        self.tested = tuple(sorted((set(rule.when or {}) | set(approval_when or {})) - numbers))
        # nothing in the rule looks at the arguments or the ledger: its verdict depends on the names alone
        self.plain = self.when is None and not self.limits and self.rate is None and self.approval is None

    def matches_names(self, agent: str, tool: str) -> bool:
        for (exact, wild), name in ((self.tools, tool), (self.agents, agent)):
            if name not in exact and (wild is None or not wild.fullmatch(name)):
                return False
        return True

    def unbounded(self, args: Mapping[str, Any]) -> Verdict | None:
        """A denial when an argument this rule reads is NaN, an infinity or out of float range, else None."""
        for names, numeric in ((self.numbers, True), (self.tested, False)):
            for name in names:
                value = lookup(args, name)
                if non_finite(value, numeric=numeric):
                    reason = (
                        f"{name}={_short(value)} is not a finite number (NaN, infinity or out of range): "
                        f"rule {self.id} cannot decide on it"
                    )
                    return Verdict(Effect.DENY, reason, self.id)
        return None

    def bound(self, agent: str, args: Mapping[str, Any], windows: list[WindowCheck]) -> Verdict | None:
        """Apply this allow rule's limits and rate: a denial, or None after adding its windows to `windows`."""
        # One usage scope per rule and limited argument; a rule's `rate` counts the calls of its first scope,
        # so a rule with a rate and a sum window writes one usage row per call, not two.
        first_sum: tuple[str, float] | None = None
        for name, limit in self.limits:
            value = lookup(args, name)
            if is_missing(value):
                return Verdict(Effect.DENY, f"argument {name} is missing but the rule limits it", self.id)
            number = as_number(value)
            if number is None:
                return Verdict(Effect.DENY, f"{name}={_short(value)} is not a number", self.id)
            if limit.max is not None and number > limit.max:
                return Verdict(Effect.DENY, f"{name}={_short(value)} is over the limit of {limit.max:g}", self.id)
            if limit.min is not None and number < limit.min:
                return Verdict(Effect.DENY, f"{name}={_short(value)} is under the minimum of {limit.min:g}", self.id)
            if limit.window is not None:
                # A sum window bounds what is spent: a negative amount counts as nothing, never as credit.
                amount = max(number, 0.0)
                per, sum_scope = limit.window.per, f"{agent}\x1f{self.id}\x1fsum:{name}"
                first_sum = first_sum or (sum_scope, amount)
                label = f"{name} may sum to {limit.window.max_sum:g} per {_span(per)}"
                windows.append(
                    WindowCheck(sum_scope, int(per * 1e9), None, float(limit.window.max_sum), amount, self.id, label)
                )
        if self.rate is not None:
            per = self.rate.per
            scope, amount = first_sum or (f"{agent}\x1f{self.id}\x1fcalls", 1.0)
            label = f"{self.rate.max_calls} calls per {_span(per)}"
            windows.append(WindowCheck(scope, int(per * 1e9), self.rate.max_calls, None, amount, self.id, label))
        return None

    def asks_approval(self, args: Mapping[str, Any]) -> bool:
        """Whether this rule wants a person to approve the call."""
        return self.approval is not None and (self.approval_when is None or self.approval_when(args) is None)


def _short(value: Any) -> str:
    """An argument's repr for a reason: cut short, and a note if the object's own `__repr__` fails (`shown`)."""
    text = shown(value, repr)
    return text if len(text) <= 60 else text[:57] + "..."


class PolicyEngine:
    """A compiled policy. `evaluate` costs microseconds: rule candidates are cached per (agent, tool).

    Example:
        >>> from hashed.policy import parse_policy
        >>> engine = PolicyEngine(parse_policy('''
        ... rules:
        ...   - {id: small, tools: [pay], effect: allow, limits: {amount: {max: 100}}}
        ... '''))
        >>> engine.evaluate("bot", "pay", {"amount": 500}).reason
        'amount=500 is over the limit of 100'
    """

    def __init__(self, policy: Policy, *, default_reason: str | None = None) -> None:
        self.policy = policy
        self._default_reason = default_reason
        self.hash = policy_hash(policy)
        self.shadow = policy.mode == "shadow"
        self._rules = [_Compiled(rule) for rule in policy.rules]
        self._cache: dict[tuple[str, str], tuple[_Compiled, ...]] = {}
        # Verdicts that depend on the names alone (every candidate rule is plain), made once: most calls of a
        # hot tool are decided by one dictionary lookup.
        self._fixed: dict[tuple[str, str], Verdict] = {}

    def _candidates(self, agent: str, tool: str) -> tuple[_Compiled, ...]:
        key = (agent, tool)
        found = self._cache.get(key)
        if found is None:
            found = tuple(rule for rule in self._rules if rule.matches_names(agent, tool))
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
                self._fixed.clear()
            self._cache[key] = found
            if all(rule.plain for rule in found):
                self._fixed[key] = self._verdict(agent, tool, {}, found)
        return found

    def evaluate(self, agent: str, tool: str, args: Mapping[str, Any]) -> Verdict:
        """Decide `tool(**args)` for `agent` (windows still to be counted by the caller)."""
        fixed = self._fixed.get((agent, tool))
        if fixed is not None:
            return fixed
        return self._verdict(agent, tool, args, self._candidates(agent, tool))

    def _verdict(self, agent: str, tool: str, args: Mapping[str, Any], candidates: tuple[_Compiled, ...]) -> Verdict:
        """The precedence (module docstring): deny overrides; no allow means the default; else every allow binds."""
        allows, missed, denied = self._match(tool, args, candidates)
        if denied is not None:
            return denied
        if not allows:
            return self._default(agent, tool, missed)
        windows: list[WindowCheck] = []
        approval: _Compiled | None = None
        for rule in allows:
            refused = rule.bound(agent, args, windows)
            if refused is not None:
                return refused
            if approval is None and rule.asks_approval(args):
                approval = rule
        if approval is not None:
            why = f": {approval.reason}" if approval.reason else ""
            return Verdict(
                Effect.PENDING, f"a person must approve this call{why}", approval.id, tuple(windows), approval.approval
            )
        first = allows[0]
        if not windows:
            return first.allowed  # made once per rule: nothing in it depends on the call
        return Verdict(Effect.ALLOW, first.allowed.reason, first.id, tuple(windows))

    @staticmethod
    def _match(
        tool: str, args: Mapping[str, Any], candidates: tuple[_Compiled, ...]
    ) -> tuple[list[_Compiled], tuple[_Compiled, str] | None, Verdict | None]:
        """The allow rules whose `when` holds, the closest one that did not, or the first deny that matches."""
        allows: list[_Compiled] = []
        missed: tuple[_Compiled, str] | None = None
        for rule in candidates:
            if not rule.plain:
                unbounded = rule.unbounded(args)
                if unbounded is not None:
                    return allows, missed, unbounded
            if rule.when is not None:
                problem = rule.when(args)
                if problem is not None:
                    if missed is None and not rule.deny:
                        missed = (rule, problem)
                    continue
            if rule.deny:
                return allows, missed, Verdict(Effect.DENY, rule.reason or f"rule {rule.id} forbids {tool}", rule.id)
            allows.append(rule)
        return allows, missed, None

    def _default(self, agent: str, tool: str, missed: tuple[_Compiled, str] | None) -> Verdict:
        """No allow rule matched: the policy's default effect, with the closest miss as the reason."""
        if self._default_reason is not None:
            return Verdict(Effect(self.policy.default), self._default_reason, None)
        if self.policy.default == "allow":
            return Verdict(Effect.ALLOW, "no rule matched; the policy's default is allow", None)
        if missed is not None:
            return Verdict(Effect.DENY, f"no rule allows this call; closest rule {missed[0].id}: {missed[1]}", None)
        return Verdict(Effect.DENY, f"no rule allows {tool} for agent {agent} and the default is deny", None)
