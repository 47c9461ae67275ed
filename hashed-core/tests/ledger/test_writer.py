"""The writer reads its group from a queue that callers keep appending to, from other threads."""

from __future__ import annotations

import collections
import gc

import pytest

from hashed.ledger._writer import _first


@pytest.fixture
def collection_appends():
    """Every garbage collection appends to the queue, as a caller thread let in by a finaliser would."""
    queue: collections.deque[object] = collections.deque(range(100))

    def append(phase: str, info: object) -> None:
        if phase == "start":
            queue.append("late")

    threshold = gc.get_threshold()
    gc.callbacks.append(append)
    gc.set_threshold(1)  # a collection at (nearly) every allocation of an object
    try:
        yield queue
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(append)


@pytest.mark.parametrize("limit", [32, 4096])  # a group shorter than the queue, and one that takes it all
def test_a_group_is_read_whole_while_callers_append(collection_appends, limit):
    # Seen once under load: an iterator over the queue, created just before such an append, raised
    # "deque mutated during iteration" in the writer's thread, which then wrote nothing more.
    for _ in range(200):
        group = _first(collection_appends, limit)
        assert group[: min(limit, 100)] == list(range(min(limit, 100)))
        assert len(group) >= min(limit, 100)
