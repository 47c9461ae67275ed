"""The ledger's record-level interface: `record_decision` and `record_outcome`.

The core hands the ledger an *entry* (`hashed._entries` makes them): it knows what its record says, and the
ledger chooses how to commit it. Every choice that depends on the durability mode or on the types of the
arguments is made here, and nowhere else:

- a step that asks for approval is committed at once, in every mode (a person answers what is on disk);
- a step that counts a window commits the count at once, so every process sees it before it decides, and its
  records go the way of the mode (`Appending.transact`, `counting`);
- any other record goes to the journal (durable), the writer's queue (background) or SQLite (immediate). In the
  first two the writer may build its fields later from a *recipe* of plain values, off the caller's time: in
  memory, any values that cannot change meanwhile; on disk, only what JSON carries exactly, and never what the
  record does not keep (a tool's result, arguments to redact).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from hashed.ledger._appending import Appending
from hashed.ledger._queued import Recipe
from hashed.types import Decision

if TYPE_CHECKING:
    from hashed.ledger._txn import Txn

__all__ = ["Entry", "Recording", "Step"]

# Values a queue in memory may hold until the writer builds the record: they cannot change after the call.
_IMMUTABLE: frozenset[type] = frozenset({str, int, float, bool, bytes, type(None)})
# Values a journal's JSON carries exactly as the record would keep them: not floats (JSON has no NaN or infinity),
# not bytes (no JSON at all).
_JSON_EXACT: frozenset[type] = frozenset({str, int, bool, type(None)})


class Entry(Protocol):
    """A record for the ledger to commit, however the durability mode commits it."""

    kind: str
    agent: str

    @property
    def private(self) -> bool:
        """Whether its recipe holds what the record does not keep (a result, arguments to redact)."""

    def fields(self) -> tuple[dict[str, Any], bool]:
        """The record's fields as prepared JSON, and whether encoding them needs the slow path."""

    def recipe(self, plain: frozenset[type]) -> Recipe | None:
        """A recipe for the writer (`recipes[kind]`), if every value it holds is of a type in `plain`; else None."""

    def kept(self) -> Recipe | None:
        """For a private entry, a recipe of only what the record keeps, in plain JSON values; else None."""


class Step(Entry, Protocol):
    """A decision entry: it may count windows or ask for approval, atomically with its record."""

    asks: bool  # asks a person: committed at once in every mode
    counts: bool  # counts a window: the count is committed at once
    decision: Decision  # the answer when nothing is counted or asked

    def commit(self, txn: Txn) -> Decision:
        """Count, ask, append (in one atomic step); return the final answer."""


class Recording(Appending):
    """The record-level part of `Ledger`: what the core calls for each guarded call."""

    def record_decision(self, entry: Step) -> Decision:
        """Commit a call's decision record (with its window counts and approval bookkeeping); return the answer.

        Raises:
            LedgerWriteError: the record cannot be committed (or queued, once the writer has failed).
        """
        if entry.asks:
            return self.transact(entry.commit, durable=True)
        if entry.counts:
            return self.transact(entry.commit, durable=self.journaled, counting=True)
        self.record_outcome(entry)
        return entry.decision

    def record_outcome(self, entry: Entry) -> None:
        """Commit what a call that ran did (or any record that counts nothing and asks nobody).

        Raises:
            LedgerWriteError: the record cannot be committed (or queued, once the writer has failed).
        """
        if not self.background:  # immediate: committed before the call goes on
            fields, slow = entry.fields()
            self._append_now(entry.kind, entry.agent, fields, slow)
            return
        if not self.journaled:
            recipe = entry.recipe(_IMMUTABLE)
        elif not entry.private:
            recipe = entry.recipe(_JSON_EXACT)
        else:  # a journal keeps on disk what it is given: only what the record keeps
            recipe = entry.kept()
        if recipe is not None:
            self.enqueue(entry.kind, entry.agent, recipe)
        else:
            fields, slow = entry.fields()
            self.enqueue(entry.kind, entry.agent, fields, slow=slow)
