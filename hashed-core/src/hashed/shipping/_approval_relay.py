"""Relaying approvals: local pending requests go to the backend, and its signed answers come back.

The backend keeps the agent's own id for each request, so a person sees one id everywhere; an answer counts only
when the backend's key signed it (`hashed.protocol.verify_approval`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from hashed.ledger._approvals import ApprovalStore
from hashed.protocol._requests import APPROVAL_FIELDS, verify_approval
from hashed.shipping._client import BackendClient

__all__ = ["ApprovalRelay"]

_log = logging.getLogger("hashed.shipping")


class ApprovalRelay:
    """The approvals part of `Shipper`."""

    client: BackendClient
    backend_key: str | None
    _approvals: ApprovalStore  # the requests this agent relays, and their answers

    def sync_approvals(self, only: str | None = None, *, relay_only: bool = False) -> bool:
        """Ask the backend for local pending requests, and bring back answers (checking the backend's signature).

        The backend keeps the agent's own id for each request, so a person sees one id everywhere. `only` syncs
        one request (a call that is pending now asks at once); `relay_only` just hands on requests the backend
        has not seen (a closing agent). Returns whether an answer was brought back.
        """
        answered = False
        for request in self._approvals.to_relay(only):
            remote_id = request.remote_id
            if remote_id is None:
                created = self.client.create_approval(
                    {
                        "id": request.id,
                        "call": request.call,
                        "tool": request.tool,
                        "args": request.args,
                        "args_digest": request.args_digest,
                        "rule": request.rule,
                        "reason": request.reason,
                        "timeout": max(1, int((request.expires_ns - request.created_ns) / 1e9)),
                    }
                )
                remote_id = str(created["id"])
                self._approvals.relayed(request.id, remote_id)
                if relay_only or created.get("status") == "pending":
                    continue
                answer: dict[str, Any] = created
            elif relay_only:
                continue
            else:
                answer = self.client.approval(remote_id)
            if answer.get("status") == "pending":
                continue
            answered = self._record_answer(request.id, answer) or answered
        return answered

    def _record_answer(self, local_id: str, answer: dict[str, Any]) -> bool:
        signed = answer.get("answer") or {}
        signature = answer.get("signature") or ""
        if self.backend_key is None or not verify_approval(self.backend_key, signed, signature):
            _log.error("hashed: approval answer for %s is not signed by the backend's key; ignored", local_id)
            return False
        status = str(signed["status"])
        if status not in ("approved", "denied"):
            return False  # expiry is decided locally, by the same timeout
        self._approvals.answered(
            local_id,
            status=status,
            decided_ns=int(signed["decided_at"]),
            by=signed["decided_by"],
            comment=signed["comment"],
            answer=orjson.dumps({k: signed[k] for k in APPROVAL_FIELDS}).decode(),
            sig=signature,
        )
        _log.info("hashed: approval %s %s by %s", local_id, status, signed["decided_by"])
        return True
