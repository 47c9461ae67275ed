"""`hashed._entries`: what the core hands the ledger. Whichever way the ledger commits an entry, the record is
the same: built now (`fields`) or later by the writer from its recipe (`RECIPES`), and a recipe is offered only
for values that cannot change meanwhile and never carries what the record does not keep onto a journal.
"""

from __future__ import annotations

import pytest

from hashed._decisions import RECIPES
from hashed._entries import DecisionEntry, OutcomeEntry
from hashed.ledger._recording import _IMMUTABLE, _JSON_EXACT
from hashed.policy import PolicyEngine, parse_policy
from hashed.testing.contract import CONTRACT_POLICY
from hashed.types import Decision, Effect, Outcome, ToolCall

ENGINE = PolicyEngine(parse_policy(CONTRACT_POLICY))


def _entry(args: dict, paths: tuple[str, ...] = ()) -> DecisionEntry:
    call = ToolCall("run_query", args, framework="python", call_id="c-1")
    verdict = ENGINE.evaluate("bot", call.tool, call.args)
    return DecisionEntry(call, "bot", verdict, ENGINE, "ref-1", paths, None, lambda: 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [{"sql": "select 1", "rows": 3, "dry": True, "note": None}, {"sql": "select 1", "ratio": 0.5, "raw": b"\x00"}],
)
@pytest.mark.parametrize("paths", [(), ("sql",)])
def test_a_decision_recipe_builds_the_very_record_its_fields_make(args, paths):
    entry = _entry(args, paths)
    recipe = entry.recipe(_IMMUTABLE)
    assert recipe is not None
    assert RECIPES["decision"](recipe) == entry.fields()
    if paths:
        assert entry.fields()[0]["args"]["sql"] == "[REDACTED]"


def test_a_journal_gets_no_recipe_for_values_json_cannot_carry_exactly_and_the_entry_says_when_it_redacts():
    assert _entry({"sql": "select 1", "ratio": 0.5}).recipe(_JSON_EXACT) is None  # a float: NaN, -0.0, 1e400
    assert _entry({"sql": "select 1", "raw": b"\x00"}).recipe(_JSON_EXACT) is None
    assert _entry({"sql": "select 1", "rows": [1, 2]}).recipe(_IMMUTABLE) is None  # a list may change after the call
    assert _entry({"sql": "select 1"}, ("sql",)).private and not _entry({"sql": "select 1"}).private


def test_an_outcome_recipe_builds_its_record_and_an_error_is_built_at_once():
    decision = Decision(Effect.ALLOW, "ok", "queries", "h" * 64, "ref-1", False, None, "run_query", "bot")
    done = OutcomeEntry(decision, Outcome("42 rows", None, 1_000))
    failed = OutcomeEntry(decision, Outcome(None, ValueError("no table"), 2_000))

    recipe = done.recipe(_IMMUTABLE)
    assert recipe is not None and RECIPES["outcome"](recipe) == done.fields()
    assert failed.recipe(_IMMUTABLE) is None and failed.fields()[0]["error"] == "ValueError: no table"
    assert done.private and failed.private  # the result itself never goes to a journal
