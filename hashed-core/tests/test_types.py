"""`hashed.types`: the fast `Decision` the guarded call's path builds is a `Decision` in every way a user sees."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from hashed.types import Decision, Effect, new_decision

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
