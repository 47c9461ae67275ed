"""A record waiting for its place in the chain (`Queued`), and what turns a journal frame back into one.

Callers queue (background mode) or journal (durable mode) records; the writer (`_writer.py`) and a ledger that
replays a dead process's journal (`_opening.py`) place, hash, sign and commit them.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from hashed.ledger._db import set_meta
from hashed.ledger._journal import Journal
from hashed.ledger._mac import Macs
from hashed.protocol._canonical import JsonNumber, prepare

__all__ = [
    "ForgedFrameError",
    "Queued",
    "Recipe",
    "Recipes",
    "built_fields",
    "from_frame",
    "journal_marks",
    "log_lost",
    "log_text",
    "queued",
    "store_marks",
]

_log = logging.getLogger("hashed.ledger")

Recipe = tuple[Any, ...]
Recipes = dict[str, Callable[[Recipe], tuple[dict[str, Any], bool]]]


class Queued(NamedTuple):
    """A record waiting for its place in the chain (a tuple: the cheapest immutable thing to make per call).

    `fields` is either the record's fields, or a *recipe*: a tuple of plain values from which the writer builds
    them with `recipes[kind]`, off the caller's time. A recipe holds no objects, only strings, numbers and a
    dict of them, so the garbage collector stops tracking a queued record at its first pass instead of
    promoting it, and what it references, to the old generation: full collections were a fifth of the
    background mode's cost when records carried closures.
    """

    kind: str
    agent: str
    fields: dict[str, Any] | Recipe
    slow: bool
    ts: int
    nonce: str
    usage: tuple[tuple[str, float], ...]
    mark: tuple[Journal, int] | None = None  # journal mode: the frame's journal, and the offset just past it


queued: Callable[[tuple[Any, ...]], Queued] = functools.partial(tuple.__new__, Queued)
"""`Queued` from one tuple of all eight fields, in C: a NamedTuple's own constructor is a Python call (≈ 0.3 µs more,
once per record on the caller's path)."""


def built_fields(
    kind: str, fields: dict[str, Any] | Recipe, slow: bool, recipes: Recipes
) -> tuple[dict[str, Any], bool]:
    """A record's fields, built now if what was queued is a recipe."""
    if isinstance(fields, tuple):
        return recipes[kind](fields)
    return fields, slow


class ForgedFrameError(ValueError):
    """A journal frame whose MAC does not hold: this agent did not write it, so it is never committed."""

    def __init__(self, frame: bytes) -> None:
        super().__init__("a journal frame fails its MAC")
        self.frame = frame

    def log(self, journal: str) -> None:
        """Say so, with the frame's bytes (evidence), and go on with the next frame."""
        text = self.frame.decode("utf-8", "backslashreplace")[:4096]
        _log.error("hashed: %s holds a frame this agent did not write; not committed: %s", journal, text)


def from_frame(frame: bytes, macs: Macs, mark: tuple[Journal, int] | None = None) -> Queued:
    """The record a journal frame holds, as the writer queues it (a live process's frame or a dead one's).

    A recipe comes back as a list (JSON has no tuples); fields are prepared again, so that numbers keep their
    exact JSON text.

    Raises:
        ForgedFrameError: the frame's MAC does not hold (see `_mac.py`).
    """
    payload = macs.open_frame(frame)
    if payload is None:
        raise ForgedFrameError(frame)
    kind, agent, fields, slow, ts, nonce = orjson.loads(payload)
    if isinstance(fields, list):
        fields = tuple(fields)
    else:
        fields, slow = prepare(fields)
    return queued((kind, agent, fields, slow, int(ts), nonce, (), mark))


def journal_marks(items: list[Queued]) -> dict[Journal, int]:
    """Journal mode: how far into each journal `items` reach (the last frame's end, per journal)."""
    return {item.mark[0]: item.mark[1] for item in items if item.mark is not None}


def store_marks(conn: sqlite3.Connection, marks: dict[Journal, int]) -> None:
    """Record, in the transaction that commits the records, how far each journal is committed."""
    for journal, through in marks.items():
        set_meta(conn, f"journal:{journal.name}", through)


def log_lost(item: Queued, why: str, recipes: Recipes) -> None:
    """Never drop a record silently: when it cannot be committed, its content goes to the error log."""
    _log.error("hashed: %s; the record is kept only in this log: %s", why, log_text(item, recipes))


def log_text(item: Queued, recipes: Recipes) -> str:
    """A queued record as one line of JSON, for the error log."""
    fields, _ = built_fields(item.kind, item.fields, item.slow, recipes)
    document = {"kind": item.kind, "agent": item.agent, "ts": str(item.ts), "nonce": item.nonce, **fields}
    return orjson.dumps(document, default=lambda o: o.fragment if isinstance(o, JsonNumber) else str(o)).decode()
