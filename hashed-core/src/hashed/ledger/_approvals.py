"""Approval requests: stored in the ledger database, so they survive restarts and every process sees them.

This is the one home of the `approvals` rows: the core's resolver (`hashed._decisions`), the shipper's relay,
`Hashed.approve`/`deny` and `hashed approvals` all go through `ApprovalStore`, and none of them writes SQL.

A pending call creates a request (or reuses the open one for the same agent, tool and arguments). A person
approves or denies it (`hashed approvals approve ID`); the agent's next identical call, or the call still
waiting, then consumes the answer once. Unanswered requests expire after the rule's timeout.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from hashed.errors import HashedError
from hashed.ledger._db import Database

if TYPE_CHECKING:
    from hashed.ledger._txn import Txn

__all__ = ["ApprovalRequest", "ApprovalStore"]

# Constant column list, spliced into constant SQL: no value is ever formatted into a query (S608 below).
_COLUMNS = (
    "id, call, agent, tool, args, args_digest, rule, reason, status, created_ns, expires_ns, on_timeout, "
    "decided_ns, decided_by, comment, consumed, remote_id, answer, answer_sig"
)

_BY_ID = f"SELECT {_COLUMNS} FROM approvals WHERE id = ?"  # noqa: S608
_ALL = f"SELECT {_COLUMNS} FROM approvals ORDER BY created_ns DESC"  # noqa: S608
_PENDING = f"SELECT {_COLUMNS} FROM approvals WHERE status = 'pending' AND expires_ns > ?"  # noqa: S608
_PENDING_ONE = _PENDING + " AND id = ?"


@dataclasses.dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One request for a person's approval.

    `status` is pending, approved, denied or expired (a pending request past `expires_ns`).
    """

    id: str
    call: str
    agent: str
    tool: str
    args: dict[str, Any]
    args_digest: str
    rule: str | None
    reason: str
    status: str
    created_ns: int
    expires_ns: int
    on_timeout: str
    decided_ns: int | None
    decided_by: str | None
    comment: str | None
    consumed: bool
    remote_id: str | None = None
    answer: str | None = None
    answer_sig: str | None = None

    @classmethod
    def _from_row(cls, row: tuple[Any, ...], now_ns: int) -> ApprovalRequest:
        values = list(row)
        values[4] = orjson.loads(values[4])
        values[15] = bool(values[15])
        request = cls(*values)
        if request.status == "pending" and now_ns >= request.expires_ns:
            return dataclasses.replace(request, status="expired")
        return request


class ApprovalStore:
    """Approval requests of one ledger.

    `open_for`, `create` and `consume` run inside the caller's ledger step (`Txn`), so the approval bookkeeping
    and the decision record commit together; the other methods are steps of their own.
    """

    def __init__(self, db: Database, clock: Callable[[], int]) -> None:
        self._db = db
        self._clock = clock

    def open_for(self, txn: Txn, agent: str, tool: str, digest: str) -> ApprovalRequest | None:
        """The newest request for exactly this call that is still pending, or answered and not yet used."""
        now = self._clock()
        row = txn.conn.execute(
            f"SELECT {_COLUMNS} FROM approvals WHERE agent = ? AND tool = ? AND args_digest = ? AND consumed = 0 "  # noqa: S608
            "AND status IN ('pending', 'approved', 'denied') ORDER BY created_ns DESC LIMIT 1",
            (agent, tool, digest),
        ).fetchone()
        if row is None:
            return None
        request = ApprovalRequest._from_row(row, now)
        if request.status in ("approved", "denied") and request.decided_ns is not None:
            # An answer is good for one use within the request's own timeout after it was given.
            if now - request.decided_ns > request.expires_ns - request.created_ns:
                return None
        return request

    def create(
        self,
        txn: Txn,
        *,
        call: str,
        agent: str,
        tool: str,
        args: dict[str, Any],
        digest: str,
        rule: str | None,
        reason: str,
        timeout_s: float,
        on_timeout: str,
    ) -> str:
        """Store a new pending request and return its id."""
        request_id = "apr_" + os.urandom(12).hex()  # the backend keeps this id too: one id everywhere
        now = self._clock()
        txn.conn.execute(
            f"INSERT INTO approvals ({_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, NULL, NULL, NULL, 0, NULL, NULL, NULL)",
            (
                request_id,
                call,
                agent,
                tool,
                orjson.dumps(args, default=_json_default),
                digest,
                rule,
                reason,
                now,
                now + int(timeout_s * 1e9),
                on_timeout,
            ),
        )
        return request_id

    def to_relay(self, only: str | None = None) -> list[ApprovalRequest]:
        """Pending, unexpired requests (just `only`, if given): what the shipper hands on to a backend."""
        now = self._clock()
        query, params = (_PENDING, (now,)) if only is None else (_PENDING_ONE, (now, only))
        with self._db.lock:
            return [ApprovalRequest._from_row(row, now) for row in self._db.conn.execute(query, params).fetchall()]

    def relayed(self, request_id: str, remote_id: str) -> None:
        """The backend holds the request under `remote_id` (the same id, from backends that keep the agent's)."""
        with self._db.write() as conn:
            conn.execute("UPDATE approvals SET remote_id = ? WHERE id = ?", (remote_id, request_id))

    def answered(
        self, request_id: str, *, status: str, decided_ns: int, by: str, comment: str | None, answer: str, sig: str
    ) -> None:
        """Store a backend's signed answer to a pending request (`answer`: its signed fields, JSON)."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE approvals SET status = ?, decided_ns = ?, decided_by = ?, comment = ?, answer = ?, "
                "answer_sig = ? WHERE id = ? AND status = 'pending'",
                (status, decided_ns, by, comment, answer, sig, request_id),
            )

    def consume(self, txn: Txn, request_id: str) -> None:
        """Mark an answered request as used: one approval lets exactly one call through."""
        txn.conn.execute("UPDATE approvals SET consumed = 1 WHERE id = ?", (request_id,))

    def get(self, request_id: str) -> ApprovalRequest:
        """One request by id.

        Raises:
            HashedError: no request has that id.
        """
        with self._db.lock:
            row = self._db.conn.execute(_BY_ID, (request_id,)).fetchone()
        if row is None:
            raise HashedError(f"no approval request {request_id} (list them with: hashed approvals list)")
        return ApprovalRequest._from_row(row, self._clock())

    def list(self, status: str | None = None) -> list[ApprovalRequest]:
        """Requests, newest first; `status` filters (pending, approved, denied, expired)."""
        with self._db.lock:
            rows = self._db.conn.execute(_ALL).fetchall()
        now = self._clock()
        requests = [ApprovalRequest._from_row(row, now) for row in rows]
        return [r for r in requests if status is None or r.status == status]

    def decide(self, request_id: str, *, approve: bool, by: str, comment: str | None = None) -> ApprovalRequest:
        """Approve or deny a pending request.

        Raises:
            HashedError: no such request, or it was already answered or has expired.
        """
        with self._db.write() as conn:
            current = self.get(request_id)
            if current.status != "pending":
                raise HashedError(f"approval request {request_id} is already {current.status}; nothing to do")
            conn.execute(
                "UPDATE approvals SET status = ?, decided_ns = ?, decided_by = ?, comment = ? WHERE id = ?",
                ("approved" if approve else "denied", self._clock(), by, comment, request_id),
            )
        return self.get(request_id)


def _json_default(obj: object) -> Any:
    fragment = getattr(obj, "fragment", None)
    if fragment is not None:
        return fragment
    raise TypeError(f"{type(obj).__name__} is not a JSON value")
