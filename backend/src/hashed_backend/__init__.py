"""The Hashed backend: collects, verifies and stores agents' signed ledgers; serves policies and approvals.

    python -m hashed_backend             # serve on 127.0.0.1:8400, SQLite in $XDG_DATA_HOME/hashed
    HASHED_DATABASE_URL=postgresql://… python -m hashed_backend

What agents sign (requests, registration) and what the backend signs (approval answers) is defined once, in
`hashed.shipping` (docs/api.md, "Signed requests").
"""

from __future__ import annotations

from hashed_backend._version import __version__
from hashed_backend.main import create_app
from hashed_backend.settings import BackendSettings

__all__ = [
    "BackendSettings",
    "__version__",
    "create_app",
]
