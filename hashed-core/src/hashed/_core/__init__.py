"""`Hashed`, the one choke point every guarded call goes through, and the process's default instance.

`check(call)` decides and records the decision; `record(decision, outcome)` records what the tool did.
Everything an adapter or `@guard` needs is these two calls plus `refuse()`.

`Hashed` is one class written in four modules, read in this order: `_hashed.py` (opening, `guard`, closing),
`_choke_point.py` (check, record, refuse), `_policy_and_plugins.py`, `_approvals.py`; `_state.py`
declares the attributes they share. Methods are inherited, never delegated: a guarded call costs no extra call.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from hashed._core._hashed import Hashed

__all__ = ["Hashed", "current", "instrument"]

_default: Hashed | None = None
_default_lock = threading.Lock()


def current() -> Hashed:
    """The process's default `Hashed` (the one `instrument()` set, else one made from the settings)."""
    global _default
    instance = _default
    if instance is not None and not instance._closed:  # on every call of `hashed.guard`: no lock
        return instance
    with _default_lock:
        if _default is None or _default._closed:
            _default = Hashed()
        return _default


def instrument(home: str | Path | None = None, **overrides: Any) -> Hashed:
    """Guard every installed framework with a `Hashed` built from the settings; returns it."""
    return Hashed(home, **overrides).instrument()
