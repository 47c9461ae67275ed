"""The link to the backend, on one background thread; the guarded call never waits on it.

The thread registers the agent, keeps its policy current, ships its ledger and its latest signed checkpoint,
and relays approvals (`_approval_relay.py`).

Shipping state lives in the ledger database: `meta.shipped_through` (every record up to it is acknowledged),
`meta.checkpoint_sent` (the size of the last signed checkpoint the backend answered for) and `refusals` (records
the backend refused, with its reason; `hashed logs --refused` lists them). Records are marked only when the
backend acknowledges them, so a restart resends what was not, and the backend's idempotent ingest makes a resend
harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hashed.errors import BackendError, BackendUnavailable, PolicyFileError
from hashed.ledger._approvals import ApprovalStore
from hashed.ledger._db import Database
from hashed.ledger._outbox import Outbox
from hashed.shipping._approval_relay import ApprovalRelay
from hashed.shipping._backoff import Backoff, CircuitBreaker
from hashed.shipping._client import BackendClient, PolicyAnswer
from hashed.shipping._policy_cache import PolicyCache

__all__ = ["Shipper"]

_log = logging.getLogger("hashed.shipping")
_BATCH = 500


class Shipper(ApprovalRelay):
    """Keeps one agent in step with the backend, on its own thread."""

    def __init__(
        self,
        *,
        client: BackendClient,
        db: Database,
        ledger_path: Path,
        agent: str,
        cache: PolicyCache,
        on_policy: Callable[[str], None],
        clock: Callable[[], int],
        ship_interval: float = 0.5,
        policy_interval: float = 10.0,
        queued: Callable[[], int] = lambda: 0,
    ) -> None:
        self.client = client
        self._queued = queued
        self._outbox = Outbox(db, ledger_path)  # the records to ship, and what the backend answered
        self._approvals = ApprovalStore(db, clock)  # the requests this agent relays, and their answers
        self._agent = agent
        self._cache = cache
        self._on_policy = on_policy
        self._clock = clock
        self.ship_interval = ship_interval
        self.policy_interval = policy_interval
        self.breaker = CircuitBreaker(threshold=3, reset_after=5.0)
        self.backoff = Backoff(base=0.2, cap=10.0)
        self.registered = False
        self._register_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()  # close() steps while the thread may still be stepping
        self.backend_key: str | None = None
        self.last_error: str | None = None
        self.last_contact: float | None = None
        self._policy_due = 0.0
        self._kick = threading.Event()
        self._closed = False
        self._draining = False
        self._thread = threading.Thread(target=self._loop, name="hashed-shipper", daemon=True)
        self._thread.start()

    # -- life cycle --------------------------------------------------------------------------------------

    def kick(self) -> None:
        """Work now rather than at the next interval (new records, a policy push, tests)."""
        self._kick.set()

    def _loop(self) -> None:
        while not self._closed:
            wait = self.ship_interval
            if self.breaker.allows():
                try:
                    more = self.step()
                    self.breaker.succeeded()
                    self.backoff.success()
                    self.last_error = None
                    self.last_contact = time.monotonic()
                    wait = 0.0 if more else self.ship_interval
                except BackendError as exc:  # unreachable, or refused: back off, keep everything, try again
                    self._failed(exc)
                    retry_after = exc.retry_after if isinstance(exc, BackendUnavailable) else None
                    wait = self.backoff.failure(retry_after)
                except Exception:  # noqa: BLE001 - shipping fails open: logged, retried, never reaching the agent
                    _log.exception("hashed: shipping failed unexpectedly; retrying")
                    wait = self.backoff.failure()
            else:
                wait = max(0.05, self.breaker.reset_after / 5)
            if wait:
                self._kick.wait(wait)
                self._kick.clear()

    def _failed(self, exc: BackendError) -> None:
        self.breaker.failed()
        message = str(exc)
        if message != self.last_error:
            level = logging.INFO if isinstance(exc, BackendUnavailable) else logging.WARNING
            _log.log(level, "hashed: backend problem (records are kept and sent later): %s", message)
        self.last_error = message
        if exc.code in ("agent_unknown", "unknown_agent"):
            self.registered = False

    def close(self, timeout: float) -> bool:
        """Try to ship what is left within `timeout` seconds, then stop; True if everything was shipped."""
        deadline = time.monotonic() + timeout
        self._draining = True
        done = False
        while time.monotonic() < deadline and self.breaker.allows():
            try:
                if not self.step():
                    done = self.unshipped() == 0
                    break
            except BackendError as exc:
                self._failed(exc)
                break
        if self.registered and time.monotonic() < deadline and self.breaker.allows():
            try:  # a short-lived agent's pending calls reach a person before it exits
                self.sync_approvals(relay_only=True)
            except BackendError as exc:
                self._failed(exc)
        self._closed = True
        self._kick.set()
        self._thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
        self.client.close()
        self._outbox.close()
        return done

    # -- one round ---------------------------------------------------------------------------------------

    def step(self) -> bool:
        """Register if needed, refresh the policy when due, ship one batch, relay approvals.

        Returns whether more records are waiting to be shipped.
        """
        self.register()
        if time.monotonic() >= self._policy_due and not self._draining:
            self.sync_policy()
        more = self.ship_batch()
        if not more:
            self.ship_checkpoint()
        if not self._draining:
            self.sync_approvals()
        return more

    def register(self) -> None:
        """Register the agent and learn the backend's key, once (from the shipping thread, or a pending call)."""
        with self._register_lock:
            if self.registered:
                return
            self.client.register(self._agent)
            self.backend_key = self.client.backend_key()
            self.registered = True
        _log.info("hashed: registered agent %s with %s", self._agent, self.client.base_url)

    def ask_now(self, approval_id: str) -> bool:
        """A call pending on `approval_id` asks the backend at once: whether a person answered meanwhile.

        So an agent that runs again after its request was approved proceeds at once, without waiting.
        Never raises: a backend that is down leaves the call pending, as it would be without one.
        """
        try:
            self.register()
            return self.sync_approvals(approval_id)
        except BackendError as exc:
            self._failed(exc)
            return False

    def sync_policy(self) -> bool:
        """Fetch the policy if it changed; returns whether a new one was put in force."""
        self._policy_due = time.monotonic() + self.policy_interval
        try:
            answer = self.client.policy(self._cache.etag())
        except BackendError as exc:
            if exc.code == "policy_missing":
                return False
            raise
        if answer is None:
            return False
        return self._apply(answer)

    def _apply(self, answer: PolicyAnswer) -> bool:
        try:
            self._on_policy(answer.yaml)
        except PolicyFileError as exc:  # keep the last good policy; say why loudly
            _log.error(
                "hashed: the backend's policy version %s does not validate here; keeping the last good one: %s",
                answer.version,
                exc,
            )
            return False
        self._cache.store(answer)
        _log.info("hashed: policy version %s (%s) in force", answer.version, answer.source)
        return True

    def unshipped(self) -> int:
        """Records the backend has not acknowledged: committed ones, and this process's not yet committed."""
        queued = self._queued()
        return self._outbox.unshipped() + queued

    def ship_batch(self) -> bool:
        """Send the next signed records; mark what the backend acknowledged. Returns whether more wait."""
        mark, records, more = self._outbox.next_batch(_BATCH)
        if not records:
            return False
        answer = self.client.send(records)
        new_mark, refusals = self._acknowledged(mark, records, answer)
        if new_mark != mark or refusals:
            self._outbox.acknowledge(new_mark, refusals, self._clock())
        return more or new_mark < records[-1]["seq"]

    def _acknowledged(
        self, mark: int, records: list[dict[str, Any]], answer: dict[str, Any]
    ) -> tuple[int, list[tuple[int, str, str]]]:
        results = {int(r["seq"]): r for r in answer.get("results", [])}
        head = int((answer.get("head") or {}).get("seq") or 0)
        refusals: list[tuple[int, str, str]] = []
        new_mark = mark
        for record in records:
            result = results.get(record["seq"])
            if result is None:
                break
            if result["status"] == "refused":
                code = str(result.get("code") or "refused")
                if code in ("unknown_agent", "agent_unknown"):
                    self.registered = False
                    break
                if code == "out_of_order" and head < mark:
                    # The backend lost records it had acknowledged (a new or restored database): resend from its head.
                    _log.warning("hashed: the backend holds this agent's chain up to %d; resending from there", head)
                    return min(mark, head), []
                refusals.append((record["seq"], code, str(result.get("reason") or "")))
                _log.warning(
                    "hashed: the backend refused record %d (%s): %s", record["seq"], code, result.get("reason")
                )
            new_mark = record["seq"]
        return new_mark, refusals

    def ship_checkpoint(self) -> str | None:
        """Send the latest signed checkpoint once its records are shipped; the backend's answer, or None.

        Never raises, and never holds up records: a backend that cannot check it yet (`checkpoint_ahead`, or
        unreachable) gets it again next round; a refusal for good (`forked`: the backend holds another history, or
        any other 4xx) is logged and not sent again.
        """
        with self._checkpoint_lock:
            return self._ship_checkpoint()

    def _ship_checkpoint(self) -> str | None:
        due = self._outbox.checkpoint_to_send()
        if due is None:
            return None
        size, note = due
        try:
            answer = self.client.send_checkpoint(note)
        except BackendUnavailable:
            return None
        except BackendError as exc:
            if exc.code == "checkpoint_ahead":
                return None
            level = logging.ERROR if exc.code == "forked" else logging.WARNING
            _log.log(level, "hashed: the backend refused the checkpoint at size %d: %s", size, exc)
            self._outbox.checkpoint_sent(size)
            return exc.code
        self._outbox.checkpoint_sent(size)
        return str(answer.get("status"))
