"""Hashed: every tool call an AI agent makes is checked against policy, signed, and recorded.

    from hashed import Hashed
    hashed = Hashed()                          # reads .hashed/ (made by `hashed init`); no backend needed

    @hashed.guard("transfer_money")
    def transfer_money(to: str, amount: float) -> str: ...

or, with the process's default instance (set up from the project's settings at the first call):

    import hashed

    @hashed.guard("transfer_money")
    def transfer_money(to: str, amount: float) -> str: ...

See docs/ for the policy format, the record protocol and the framework adapters.
"""

from __future__ import annotations

from hashed._core import Hashed, current, instrument
from hashed._guard import guard
from hashed._version import __version__
from hashed.config import HashedSettings
from hashed.errors import (
    AdapterError,
    BackendError,
    BackendUnavailable,
    ChainBrokenError,
    ConfigError,
    FrameworkVersionError,
    HashedError,
    IdentityError,
    LedgerError,
    LedgerWriteError,
    PolicyDenied,
    PolicyError,
    PolicyFileError,
    SignatureError,
)
from hashed.identity import Identity
from hashed.types import Decision, Effect, LedgerRecord, Outcome, Refusal, ToolCall

__all__ = [
    "AdapterError",
    "BackendError",
    "BackendUnavailable",
    "ChainBrokenError",
    "ConfigError",
    "Decision",
    "Effect",
    "FrameworkVersionError",
    "Hashed",
    "HashedError",
    "HashedSettings",
    "Identity",
    "IdentityError",
    "LedgerError",
    "LedgerRecord",
    "LedgerWriteError",
    "Outcome",
    "PolicyDenied",
    "PolicyError",
    "PolicyFileError",
    "Refusal",
    "SignatureError",
    "ToolCall",
    "__version__",
    "current",
    "guard",
    "instrument",
]
