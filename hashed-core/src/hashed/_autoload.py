"""Imported at interpreter start (by `hashed-autoload.pth`) when HASHED_INSTRUMENT=1, as `hashed run` sets it.

Guards every installed framework before the user's program starts. If Hashed cannot start, the program does
not run unguarded: it stops with a message saying why (fail closed).
"""

from __future__ import annotations

import os
import sys


def start() -> None:
    """Instrument every installed framework, or stop the interpreter if Hashed cannot start."""
    import hashed

    try:
        hashed.instrument()
    except hashed.HashedError as exc:
        sys.stderr.write(f"hashed: HASHED_INSTRUMENT=1 but Hashed cannot start, so nothing runs unguarded: {exc}\n")
        sys.stderr.flush()
        os._exit(78)  # SystemExit during site start-up would be a fatal interpreter error instead
