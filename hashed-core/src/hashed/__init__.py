"""Hashed: every tool call an AI agent makes is checked against policy, signed, and recorded.

    from hashed import Hashed
    hashed = Hashed()                          # reads .hashed/ (made by `hashed init`); no backend needed

    @hashed.guard("transfer_money")
    def transfer_money(to: str, amount: float) -> str: ...

See docs/ for the policy format, the record protocol and the framework adapters.
"""

from __future__ import annotations

from hashed._core import Hashed, current, instrument
from hashed._version import __version__
from hashed.config import HashedSettings
from hashed.errors import (
    ChainBrokenError,
    ConfigError,
    HashedError,
    IdentityError,
    LedgerError,
    LedgerWriteError,
    PolicyDenied,
    PolicyFileError,
)
from hashed.identity import Identity
from hashed.types import Decision, Effect, LedgerRecord, Outcome, Refusal, ToolCall

__all__ = [
    "ChainBrokenError",
    "ConfigError",
    "Decision",
    "Effect",
    "Hashed",
    "HashedError",
    "HashedSettings",
    "Identity",
    "LedgerError",
    "LedgerRecord",
    "LedgerWriteError",
    "Outcome",
    "PolicyDenied",
    "PolicyFileError",
    "Refusal",
    "ToolCall",
    "__version__",
    "current",
    "instrument",
]
