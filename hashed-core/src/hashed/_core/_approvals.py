"""Approvals as a `Hashed` sees them: a person's answer given here, and a pending call's look for one.

The requests themselves live in the ledger database (`hashed.ledger._approvals.ApprovalStore`); the shipper
relays them to the backend and brings answers back.
"""

from __future__ import annotations

import getpass

from hashed._core._state import HashedState
from hashed.ledger._approvals import ApprovalRequest
from hashed.types import Decision

__all__ = ["Approvals"]


class Approvals(HashedState):
    """The approval part of `Hashed`."""

    def approve(self, request_id: str, *, by: str | None = None, comment: str | None = None) -> ApprovalRequest:
        """Approve a pending request (as the local user unless `by` is given)."""
        self._reopen()
        return self.approvals.decide(request_id, approve=True, by=by or _whoami(), comment=comment)

    def deny(self, request_id: str, *, by: str | None = None, comment: str | None = None) -> ApprovalRequest:
        """Deny a pending request."""
        self._reopen()
        return self.approvals.decide(request_id, approve=False, by=by or _whoami(), comment=comment)

    def _asked_backend(self, decision: Decision) -> bool:
        """Whether the backend holds an answer to a pending call (a person may have answered while no agent ran)."""
        shipper = self.shipper
        if shipper is None or decision.shadow or decision.approval_id is None:
            return False
        return shipper.ask_now(decision.approval_id)

    def _answered(self, decision: Decision) -> bool:
        return decision.approval_id is not None and self.approvals.get(decision.approval_id).status != "pending"


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
