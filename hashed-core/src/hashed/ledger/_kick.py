"""How a caller wakes the writer thread: `threading.Event`'s interface, in one C call.

`Event.set` runs a `Condition` in Python (seven calls, a lock taken and released twice). A caller wakes the writer
only when it sleeps, so after a quiet second, which is when everything is cold: there `Event.set` cost ≈ 38 µs of
a guarded call's ≈ 230 µs (issue #18's notes). `queue.SimpleQueue.put` wakes the same waiter from C.

Example:
    >>> kick = Kick()
    >>> kick.wait(0.0)
    False
    >>> kick.set(); kick.set()
    >>> kick.wait(1.0), kick.wait(0.0)
    (True, True)
    >>> kick.clear(); kick.wait(0.0)
    False
"""

from __future__ import annotations

import queue

__all__ = ["Kick"]


class Kick:
    """A flag one thread waits on and others set: set, wait (true when set), clear.

    The flag is a plain attribute (read and written under the GIL), the queue only wakes the waiter.
    """

    __slots__ = ("_set", "_waiting")

    def __init__(self) -> None:
        self._waiting: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._set = False

    def set(self) -> None:
        """Set the flag; wakes a thread waiting for it."""
        if not self._set:  # one wake is enough: the queue does not grow while nobody clears
            self._set = True
            self._waiting.put(None)

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the flag; whether it is set. It stays set until `clear`."""
        if self._set:
            return True
        try:
            self._waiting.get(timeout=timeout)
        except queue.Empty:
            return self._set
        return True  # (a wake that raced a `clear` may come early: the writer only looks again)

    def clear(self) -> None:
        """Unset the flag."""
        self._set = False
        waiting = self._waiting
        for _ in range(waiting.qsize()):
            try:
                waiting.get_nowait()
            except queue.Empty:
                break
