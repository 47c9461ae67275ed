"""Policy: the document (`Policy`), reading it with precise errors, and deciding calls (`PolicyEngine`)."""

from __future__ import annotations

from hashed.policy._engine import PolicyEngine, Verdict, WindowCheck
from hashed.policy._loader import PolicyIssue, load_policy, parse_policy, policy_hash, policy_issues
from hashed.policy._schema import ApprovalSpec, Condition, Limit, Policy, Rate, Rule, Window, parse_duration

__all__ = [
    "ApprovalSpec",
    "Condition",
    "Limit",
    "Policy",
    "PolicyEngine",
    "PolicyIssue",
    "Rate",
    "Rule",
    "Verdict",
    "Window",
    "WindowCheck",
    "load_policy",
    "parse_duration",
    "parse_policy",
    "policy_hash",
    "policy_issues",
]
