"""What the core hands the ledger for each record: an entry (`Ledger.record_decision` / `record_outcome`).

An entry knows what its record holds (the fields and recipes of `hashed._decisions`) and the ledger chooses how
to commit it (`hashed.ledger._recording`): at once, with its window count first, journaled, queued, or built
later from a recipe. The core never asks which durability mode it runs in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hashed._args import RecordedArgs, record_args, text
from hashed._decisions import (
    commit_decision,
    decision_fields,
    decision_recipe,
    kept_outcome_recipe,
    outcome_fields,
    outcome_recipe,
    recorded_args,
)
from hashed.policy import PolicyEngine, Verdict
from hashed.types import Decision, Effect, Outcome, ToolCall, new_decision

if TYPE_CHECKING:
    from hashed.ledger._approvals import ApprovalStore
    from hashed.ledger._txn import Txn

__all__ = ["DecisionEntry", "OutcomeEntry", "WrittenOutcome"]


class DecisionEntry:
    """One call's decision record, for `Ledger.record_decision`: this module says what it holds, the ledger how.

    How: committed at once, journaled, queued, or built later from a recipe, as the durability mode says.
    `decision` is the answer as the policy (and plugins) gave it; a step that counts a window or asks for approval
    may change it (`commit`). The recorded arguments are made when first needed, and at once for such a step (a
    person approves, and a window counts, exactly these arguments): arguments that cannot be recorded deny the call.
    """

    __slots__ = (
        "_approvals",
        "_args",
        "_call",
        "_clock",
        "_engine",
        "_paths",
        "_verdict",
        "agent",
        "asks",
        "counts",
        "decision",
        "private",
    )
    kind = "decision"

    def __init__(
        self,
        call: ToolCall,
        agent: str,
        verdict: Verdict,
        engine: PolicyEngine,
        call_ref: str,
        paths: Sequence[str],
        approvals: ApprovalStore,
        clock: Callable[[], int],
        args: RecordedArgs | None = None,
    ) -> None:
        self._call, self.agent, self._verdict, self._engine, self._paths = call, agent, verdict, engine, paths
        self._approvals, self._clock = approvals, clock
        effect = verdict.effect
        tool = call.tool
        self.decision = new_decision(
            effect,
            verdict.reason,
            verdict.rule_id,
            engine.hash,
            call_ref,
            engine.shadow,
            None,
            tool if tool.isascii() else text(tool),
            agent,
        )
        self.private = bool(paths)  # whether a recipe would hold values the record does not keep (to redact)
        self.asks = asks = effect is Effect.PENDING
        self.counts = counts = bool(verdict.windows)
        if args is None and (asks or counts):
            args = record_args(call.args, paths)
        self._args = args

    @property
    def args(self) -> RecordedArgs:
        """The arguments as the record keeps them (made once).

        A step that counts or asks has them already (`record_args`: arguments that cannot be read fail it
        closed, since an approval is matched on their digest); any other decision is recorded even then, as the
        writer records a recipe's (`recorded_args`).
        """
        args = self._args
        if args is None:
            args = self._args = recorded_args(self._call.args, self._paths, self.decision.tool)
        return args

    def fields(self) -> tuple[dict[str, Any], bool]:
        """The decision record's fields (docs/protocol.md §2), and whether they need the slow encoder."""
        verdict, args = self._verdict, self.args
        fields = decision_fields(
            self._call,
            args,
            self.decision.call_ref,
            self._engine,
            verdict.effect,
            verdict.reason,
            verdict.rule_id,
            None,
        )
        return fields, args.slow

    def recipe(self, plain: frozenset[type]) -> tuple[Any, ...] | None:
        """`decision_recipe`, when every argument is of a type in `plain`."""
        call = self._call
        if plain.issuperset(map(type, call.args.values())):
            return decision_recipe(call, self._paths, self.decision.call_ref, self._engine, self._verdict)
        return None

    def kept(self) -> None:
        """None: a private decision's arguments are redacted as its fields are built (by the caller, for a journal)."""
        return None

    def commit(self, txn: Txn) -> Decision:
        """Count windows, resolve approvals, append the record (`commit_decision`); the final `Decision`."""
        return commit_decision(
            txn,
            self._approvals,
            self._call,
            self.agent,
            self._verdict,
            self.args,
            self.decision.call_ref,
            self._engine,
            self._clock(),
        )


class OutcomeEntry:
    """The outcome record of a call that ran, for `Ledger.record_outcome`.

    Private: only the result's digest is kept, so its recipe (which holds the result) never goes to a journal.
    """

    __slots__ = ("_decision", "_outcome", "agent")
    kind = "outcome"
    private = True

    def __init__(self, decision: Decision, outcome: Outcome) -> None:
        self._decision, self._outcome, self.agent = decision, outcome, decision.agent

    def fields(self) -> tuple[dict[str, Any], bool]:
        """`outcome_fields` (never slow to encode)."""
        return outcome_fields(self._decision, self._outcome), False

    def recipe(self, plain: frozenset[type]) -> tuple[Any, ...] | None:
        """`outcome_recipe`, for a call that returned a value of a type in `plain`."""
        outcome = self._outcome
        if outcome.error is None and type(outcome.result) in plain:
            return outcome_recipe(self._decision, outcome)
        return None

    def kept(self) -> tuple[Any, ...]:
        """`kept_outcome_recipe`: the record's values, the result digested (for a journal)."""
        return kept_outcome_recipe(self._decision, self._outcome)


class WrittenOutcome:
    """An outcome record whose fields are built already (one that could not be written when its call returned)."""

    __slots__ = ("_fields", "agent")
    kind = "outcome"
    private = True

    def __init__(self, agent: str, fields: dict[str, Any]) -> None:
        self.agent, self._fields = agent, fields

    def fields(self) -> tuple[dict[str, Any], bool]:
        """The fields as they were built."""
        return self._fields, False

    def recipe(self, plain: frozenset[type]) -> None:
        """None: the fields are built."""
        return None

    def kept(self) -> None:
        """None: the fields are built."""
        return None
