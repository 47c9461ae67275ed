"""`hashed.types`: the fast `ToolCall`, `Decision` and `Outcome` of the guarded call's path are the real thing."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from hashed.types import Decision, Effect, Outcome, ToolCall, new_decision, new_outcome, new_tool_call

FIELDS = (Effect.PENDING, "needs a person", "big-transfers", "ab12", "c1", False, "apr-1", "transfer", "bot")


def test_the_fast_decision_equals_hashes_and_prints_like_one_built_the_usual_way():
    fast, usual = new_decision(*FIELDS), Decision(*FIELDS)
    assert type(fast) is Decision
    assert fast == usual and hash(fast) == hash(usual) and repr(fast) == repr(usual)
    assert fast.refusal_message == usual.refusal_message and not fast.allowed


def test_the_fast_decision_is_frozen_and_works_with_dataclasses_replace_and_pickle():
    fast = new_decision(*FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.effect = Effect.ALLOW  # type: ignore[misc]
    allowed = dataclasses.replace(fast, effect=Effect.ALLOW, reason="approved")
    assert allowed.allowed and allowed.call_ref == "c1" and fast.effect is Effect.PENDING
    assert pickle.loads(pickle.dumps(fast)) == fast  # noqa: S301 - our own bytes


@pytest.mark.parametrize(
    ("fast", "usual"),
    [
        (
            lambda: new_tool_call("send", {"to": "a@b.c"}, "bot", "langchain", "run-1", "call-1", None),
            lambda: ToolCall("send", {"to": "a@b.c"}, "bot", "langchain", "run-1", "call-1", None),
        ),
        (lambda: new_outcome("sent", None, 1_500), lambda: Outcome("sent", None, 1_500)),
    ],
    ids=["ToolCall", "Outcome"],
)
def test_the_fast_tool_call_and_outcome_are_equal_frozen_and_replaceable(fast, usual):
    made, expected = fast(), usual()
    assert type(made) is type(expected) and made == expected and repr(made) == repr(expected)
    first = dataclasses.fields(made)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, first, "other")
    assert dataclasses.replace(made, **{first: getattr(expected, first)}) == expected
