from __future__ import annotations

import pytest

from hashed import Effect
from hashed.policy import PolicyEngine, parse_policy


def engine(text: str) -> PolicyEngine:
    return PolicyEngine(parse_policy(text))


def test_a_matching_deny_wins_over_any_allow_whatever_the_order():
    for rules in (
        "[{id: a, tools: ['*'], effect: allow}, {id: d, tools: [drop_table], effect: deny}]",
        "[{id: d, tools: [drop_table], effect: deny}, {id: a, tools: ['*'], effect: allow}]",
    ):
        verdict = engine(f"rules: {rules}").evaluate("bot", "drop_table", {})
        assert (verdict.effect, verdict.rule_id) == (Effect.DENY, "d")


def test_no_matching_rule_falls_back_to_the_default():
    deny = engine("default: deny\nrules: [{id: a, tools: [read], effect: allow}]").evaluate("bot", "write", {})
    assert (deny.effect, deny.rule_id) == (Effect.DENY, None)
    assert "no rule allows write" in deny.reason
    allow = engine("default: allow\nrules: [{id: a, tools: [read], effect: allow}]").evaluate("bot", "write", {})
    assert (allow.effect, allow.rule_id) == (Effect.ALLOW, None)


def test_globs_match_tools_and_agents():
    e = engine("rules: [{id: a, tools: ['crm.*', 'send_?mail'], agents: ['billing-*'], effect: allow}]")
    assert e.evaluate("billing-eu", "crm.update", {}).effect is Effect.ALLOW
    assert e.evaluate("billing-eu", "send_email", {}).effect is Effect.ALLOW
    assert e.evaluate("support", "crm.update", {}).effect is Effect.DENY
    assert e.evaluate("billing-eu", "crm", {}).effect is Effect.DENY


def test_every_matching_allow_rule_constrains_the_call():
    e = engine(
        """
rules:
  - {id: broad, tools: ['*'], effect: allow}
  - {id: cap, tools: [pay], effect: allow, limits: {amount: {max: 100}}}
"""
    )
    assert e.evaluate("bot", "pay", {"amount": 100}).effect is Effect.ALLOW
    over = e.evaluate("bot", "pay", {"amount": 101})
    assert (over.effect, over.rule_id) == (Effect.DENY, "cap")


def test_when_conditions_select_the_rules_that_apply():
    e = engine(
        """
rules:
  - id: internal
    tools: [send_email]
    effect: allow
    when: {to: {domain_in: [corp.example]}}
  - id: partners
    tools: [send_email]
    effect: allow
    when: {to: {domain_in: ["*.partner.example"]}}
    approval: always
  - id: no-secrets
    tools: [send_email]
    effect: deny
    when: {subject: {matches: "(?i)password"}}
    reason: never mail passwords
"""
    )
    assert e.evaluate("bot", "send_email", {"to": "Ann <ann@corp.example>", "subject": "hi"}).effect is Effect.ALLOW
    assert e.evaluate("bot", "send_email", {"to": "bob@eu.partner.example", "subject": "hi"}).effect is Effect.PENDING
    outsider = e.evaluate("bot", "send_email", {"to": "eve@evil.example", "subject": "hi"})
    assert outsider.effect is Effect.DENY
    assert "closest rule internal: to='eve@evil.example' has domain 'evil.example'" in outsider.reason
    secret = e.evaluate("bot", "send_email", {"to": "ann@corp.example", "subject": "Your PASSWORD"})
    assert (secret.effect, secret.reason) == (Effect.DENY, "never mail passwords")


@pytest.mark.parametrize(
    ("condition", "value", "holds"),
    [
        ("{eq: USD}", "USD", True),
        ("{eq: USD}", "EUR", False),
        ("{ne: USD}", "EUR", True),
        ("{lt: 10}", 9.5, True),
        ("{lt: 10}", 10, False),
        ("{le: 10}", "10", True),
        ("{gt: 0, le: 5}", 5, True),
        ("{ge: 1}", "many", False),
        ("{in: [a, b]}", "b", True),
        ("{not_in: [a, b]}", "b", False),
        ("{matches: '^acct-'}", "acct-9", True),
        ("{matches: '^acct-'}", 42, False),
        ("{not_matches: 'DROP'}", "select 1", True),
        ("{domain_in: [example.com]}", ["a@example.com", "b@EXAMPLE.com"], True),
        ("{domain_in: [example.com]}", ["a@example.com", "b@evil.com"], False),
        ("{domain_not_in: [evil.com]}", "x@evil.com", False),
        ("{domain_in: [example.com]}", "not-an-address", False),
        ("{present: true}", None, True),
    ],
)
def test_condition_operators(condition, value, holds):
    e = engine(f"rules: [{{id: r, tools: [t], effect: allow, when: {{x: {condition}}}}}]")
    assert (e.evaluate("bot", "t", {"x": value}).effect is Effect.ALLOW) is holds


def test_absent_arguments_fail_conditions_and_limits_closed():
    e = engine("rules: [{id: r, tools: [pay], effect: allow, limits: {amount: {max: 5}}}]")
    missing = e.evaluate("bot", "pay", {})
    assert missing.effect is Effect.DENY and "argument amount is missing" in missing.reason
    not_number = e.evaluate("bot", "pay", {"amount": "lots"})
    assert not_number.effect is Effect.DENY and "is not a number" in not_number.reason
    e = engine("rules: [{id: r, tools: [t], effect: allow, when: {dry_run: {present: false}}}]")
    assert e.evaluate("bot", "t", {}).effect is Effect.ALLOW
    assert e.evaluate("bot", "t", {"dry_run": True}).effect is Effect.DENY


def test_nested_argument_paths():
    e = engine("rules: [{id: r, tools: [t], effect: allow, limits: {payment.amount: {max: 5}}}]")
    assert e.evaluate("bot", "t", {"payment": {"amount": 4}}).effect is Effect.ALLOW
    assert e.evaluate("bot", "t", {"payment": {"amount": 6}}).effect is Effect.DENY


def test_approval_always_or_above_a_threshold():
    e = engine(
        """
rules:
  - {id: big, tools: [pay], effect: allow, approval: {when: {amount: {gt: 500}}, timeout: 1h, on_timeout: allow}}
  - {id: wire, tools: [wire], effect: allow, approval: always}
"""
    )
    assert e.evaluate("bot", "pay", {"amount": 500}).effect is Effect.ALLOW
    pending = e.evaluate("bot", "pay", {"amount": 501})
    assert (pending.effect, pending.rule_id, pending.approval.timeout, pending.approval.on_timeout) == (
        Effect.PENDING,
        "big",
        3600,
        "allow",
    )
    assert e.evaluate("bot", "wire", {}).effect is Effect.PENDING


def test_windows_are_listed_per_agent_and_rule():
    e = engine(
        "rules: [{id: r, tools: [pay], effect: allow, rate: {per: 1h, max_calls: 3},"
        " limits: {amount: {window: {per: 1d, max_sum: 10}}}}]"
    )
    verdict = e.evaluate("bot-1", "pay", {"amount": 4})
    # The rate rides on the sum window's usage scope: one usage row per call serves both.
    assert [(w.scope, w.max_calls, w.max_sum, w.amount) for w in verdict.windows] == [
        ("bot-1\x1fr\x1fsum:amount", None, 10.0, 4.0),
        ("bot-1\x1fr\x1fsum:amount", 3, None, 4.0),
    ]
    rate_only = engine("rules: [{id: r, tools: [pay], effect: allow, rate: {per: 1h, max_calls: 3}}]")
    [window] = rate_only.evaluate("bot-1", "pay", {}).windows
    assert (window.scope, window.amount) == ("bot-1\x1fr\x1fcalls", 1.0)


def test_a_thousand_rules_still_pick_the_right_one():
    rules = "\n".join(f"  - {{id: r{i}, tools: [tool_{i}], effect: allow}}" for i in range(1000))
    e = engine(f"rules:\n{rules}\n  - {{id: deny-999, tools: [tool_999], effect: deny}}\n")
    assert e.evaluate("bot", "tool_500", {}).rule_id == "r500"
    assert e.evaluate("bot", "tool_999", {}).rule_id == "deny-999"
    assert e.evaluate("bot", "tool_1000", {}).effect is Effect.DENY
