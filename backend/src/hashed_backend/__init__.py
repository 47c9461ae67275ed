"""The Hashed backend: collects, verifies and stores agents' signed ledgers; serves policies and approvals.

    python -m hashed_backend             # serve on 127.0.0.1:8400, SQLite in $XDG_DATA_HOME/hashed
    HASHED_DATABASE_URL=postgresql://… python -m hashed_backend

`canonical_request` is what agents sign for each request (docs/api.md, "Signed requests").
"""

from __future__ import annotations

from hashed_backend._version import __version__
from hashed_backend.main import create_app
from hashed_backend.settings import BackendSettings
from hashed_backend.signing import approval_message, canonical_request, registration_message, signed_headers

__all__ = [
    "BackendSettings",
    "__version__",
    "approval_message",
    "canonical_request",
    "create_app",
    "registration_message",
    "signed_headers",
]
