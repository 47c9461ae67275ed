"""What every part of `Hashed` shares, declared once: the attributes `Hashed.__init__` sets.

`Hashed` is one class written in four modules (see the package docstring); each part reads this state through
`self`, so a guarded call goes through no more calls than when they were one module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashed._unrecorded import Unrecorded
    from hashed.config import HashedSettings
    from hashed.identity import Identity
    from hashed.ledger import Ledger
    from hashed.ledger._approvals import ApprovalStore
    from hashed.plugins import PluginManager
    from hashed.policy import PolicyEngine
    from hashed.shipping import Shipper

__all__ = ["HashedState"]


class HashedState:
    """The attributes of a `Hashed` (annotations only: nothing here runs or costs anything per call)."""

    settings: HashedSettings
    identity: Identity
    ledger: Ledger
    approvals: ApprovalStore
    shipper: Shipper | None
    policy_source: str
    _clock: Callable[[], int]
    _engine: PolicyEngine
    _pm: PluginManager
    _pm_version: int  # the plugin manager's version the hook flags below were read at
    _decide_hooks: bool
    _redact_hooks: bool
    _forked: bool  # set in a forked child: the ledger's threads, journal and connection are the parent's
    _unrecorded: Unrecorded
    _closed: bool

    if TYPE_CHECKING:

        def _reopen(self) -> None:
            """In a forked child, at its first use: a ledger of its own (`Hashed._reopen`)."""
