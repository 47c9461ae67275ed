"""Imported at interpreter start (by `hashed-autoload.pth`) when HASHED_INSTRUMENT=1, as `hashed run` sets it.

Guards every installed framework before the user's program starts. If Hashed cannot start, the program does
not run unguarded: it stops with a message saying why (fail closed).

Here Hashed owns the start of the process, as a command line does, so a Hashed error the program does not catch
ends it with one line instead of a traceback (issue #16). A plain `python agent.py` keeps Python's own report:
there Hashed is a library, and replacing the program's excepthook would override its own (rich, Sentry, IPython).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import TracebackType


def start() -> None:
    """Instrument every installed framework, or stop the interpreter if Hashed cannot start."""
    import hashed

    try:
        hashed.instrument()
    except hashed.HashedError as exc:
        sys.stderr.write(f"hashed: HASHED_INSTRUMENT=1 but Hashed cannot start, so nothing runs unguarded: {exc}\n")
        sys.stderr.flush()
        os._exit(78)  # SystemExit during site start-up would be a fatal interpreter error instead
    sys.excepthook = _one_line_for(hashed.HashedError, sys.excepthook)


def _one_line_for(
    errors: type[BaseException], previous: Callable[[type[BaseException], BaseException, TracebackType | None], object]
) -> Callable[[type[BaseException], BaseException, TracebackType | None], None]:
    """An excepthook printing an uncaught `errors` as `hashed: error: <message>` (the message says what to do)."""

    def hook(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
        if isinstance(value, errors):
            sys.stderr.write(f"hashed: error: {value}\n")
            sys.stderr.flush()
        else:
            previous(kind, value, traceback)

    return hook
