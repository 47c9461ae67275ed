from __future__ import annotations

import pytest

from hashed import PolicyFileError
from hashed.policy import PolicyEngine, load_policy, parse_policy, policy_hash

GOOD = """\
version: 1
default: deny
mode: enforce
rules:
  - id: small-transfers
    tools: [transfer_money]
    agents: ["billing-*"]
    effect: allow
    limits:
      amount: {max: 1000, window: {per: 1d, max_sum: 5000}}
    rate: {per: 1h, max_calls: 10}
    when:
      to: {matches: "^acct-"}
      currency: {in: [USD, EUR]}
    approval: {when: {amount: {gt: 500}}, timeout: 15m, on_timeout: deny}
  - id: never-delete
    tools: ["delete_*"]
    effect: deny
    reason: Agents never delete data.
"""


def _error(text: str, tmp_path) -> PolicyFileError:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyFileError) as info:
        load_policy(path)
    return info.value


def test_the_design_example_validates():
    policy = parse_policy(GOOD)
    assert [r.id for r in policy.rules] == ["small-transfers", "never-delete"]
    assert policy.rules[0].rate.per == 3600
    assert policy.rules[0].limits["amount"].window.per == 86400
    assert policy.rules[0].approval.timeout == 900


def test_a_wrong_type_names_file_line_and_field(tmp_path):
    error = _error(GOOD.replace("max: 1000,", "max: lots,"), tmp_path)
    assert error.path.endswith("policy.yaml")
    assert error.line == 10
    assert error.field == "rules[0].limits.amount.max"
    assert str(error).startswith(f"{error.path}:10: rules[0].limits.amount.max: ")
    assert "hashed policy validate" in str(error)


def test_an_unknown_key_is_an_error_with_a_suggestion(tmp_path):
    error = _error(GOOD.replace("    tools: [transfer_money]", "    tool: [transfer_money]"), tmp_path)
    assert error.line == 6
    assert error.field == "rules[0].tool"
    assert "unknown field (did you mean 'tools'?)" in str(error)


def test_a_bad_effect_points_at_its_line(tmp_path):
    error = _error(GOOD.replace("effect: deny", "effect: block"), tmp_path)
    assert (error.line, error.field) == (18, "rules[1].effect")
    assert "'allow' or 'deny'" in str(error)


def test_a_missing_required_field_names_the_rule(tmp_path):
    error = _error(GOOD.replace("    effect: allow\n", ""), tmp_path)
    assert error.field == "rules[0].effect"
    assert error.line == 5
    assert "required field is missing" in str(error)


def test_bad_duration_and_bad_regex_are_explained(tmp_path):
    error = _error(GOOD.replace("per: 1h", "per: hourly"), tmp_path)
    assert error.line == 11 and "30s, 15m, 1h" in str(error)
    error = _error(GOOD.replace('"^acct-"', '"^acct-("'), tmp_path)
    assert error.line == 13 and "invalid regular expression" in str(error)


def test_duplicate_keys_and_rule_ids_are_errors(tmp_path):
    error = _error(GOOD.replace("    effect: allow\n", "    effect: allow\n    effect: deny\n"), tmp_path)
    assert error.line == 9 and "appears twice" in str(error)
    error = _error(GOOD.replace("id: never-delete", "id: small-transfers"), tmp_path)
    assert error.line == 16 and "used twice" in str(error)


def test_every_problem_is_listed(tmp_path):
    error = _error(GOOD.replace("max: 1000,", "max: lots,").replace("effect: deny", "effect: block"), tmp_path)
    assert [line for line, _, _ in error.issues] == [10, 18]
    assert "and 1 more" in str(error)


def test_invalid_yaml_names_the_line(tmp_path):
    error = _error("rules:\n  - id: x\n    tools: [a\n", tmp_path)
    assert error.line is not None and "not valid YAML" in str(error)


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(PolicyFileError, match="no such file.*hashed init"):
        load_policy(tmp_path / "nope.yaml")


def test_deny_rules_cannot_carry_limits(tmp_path):
    error = _error("rules: [{id: d, tools: [x], effect: deny, rate: {per: 1h, max_calls: 1}}]", tmp_path)
    assert "a deny rule cannot have rate" in str(error)


def test_policy_hash_ignores_layout_and_comments():
    compact = parse_policy(GOOD)
    commented = parse_policy("# the billing policy\n" + GOOD.replace("[transfer_money]", "\n      - transfer_money"))
    assert policy_hash(compact) == policy_hash(commented)
    assert policy_hash(compact) != policy_hash(parse_policy(GOOD.replace("1000", "999")))


def test_yaml_booleans_in_string_fields_get_a_hint():
    with pytest.raises(PolicyFileError, match="put the value in quotes"):
        parse_policy("rules: [{id: true, tools: [x], effect: deny}]")


def test_policy_is_read_as_yaml_1_2_so_norway_is_not_false():
    policy = parse_policy(
        "rules: [{id: embargo, tools: [ship], effect: deny, when: {country: {in: [NO, KP, yes, on, off]}}}]\n"
    )
    assert policy.rules[0].when is not None
    assert policy.rules[0].when["country"].in_ == ["NO", "KP", "yes", "on", "off"]
    engine = PolicyEngine(policy)
    assert engine.evaluate("bot", "ship", {"country": "NO"}).effect == "deny"


def test_a_glob_that_never_closes_its_set_is_refused_with_its_line(tmp_path):
    error = _error('version: 1\nrules:\n  - {id: r, tools: ["delete_["], effect: deny}\n', tmp_path)
    assert error.line == 3
    assert error.field == "rules[0].tools[0]"
    assert "never closed" in str(error)


def test_a_limit_of_nan_or_infinity_is_refused():
    for bound in (".nan", ".inf", "-.inf"):
        with pytest.raises(PolicyFileError, match="finite number"):
            parse_policy(f"rules: [{{id: r, tools: [x], effect: allow, limits: {{amount: {{max: {bound}}}}}}}]")
