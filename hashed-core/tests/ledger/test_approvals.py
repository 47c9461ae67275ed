"""`hashed.ledger._approvals.ApprovalStore`: the approval requests a pending call opens and a person answers.

The store is what `hashed approvals`, `Hashed.approve`/`deny`, the shipper and the core's resolver share; these
tests use it as they do (the resolver's part inside a ledger step).
"""

from __future__ import annotations

import pytest

from hashed.errors import HashedError
from hashed.identity import Identity
from hashed.ledger import Ledger
from hashed.ledger._approvals import ApprovalStore
from hashed.testing import FIXED_SEED, FrozenClock

DIGEST = "d" * 64


@pytest.fixture
def ledger(tmp_path, hashed_clock: FrozenClock):
    instance = Ledger(tmp_path / "ledger.db", Identity.from_seed(FIXED_SEED), clock=hashed_clock)
    yield instance
    instance.close()


@pytest.fixture
def store(ledger: Ledger, hashed_clock: FrozenClock) -> ApprovalStore:
    return ApprovalStore(ledger.db, hashed_clock)


def _open(
    store: ApprovalStore, ledger: Ledger, *, digest: str = DIGEST, timeout_s: float = 60, on_timeout: str = "deny"
) -> str:
    return ledger.transact(
        lambda txn: store.create(
            txn,
            call="ref-1",
            agent="bot",
            tool="pay",
            args={"amount": 700},
            digest=digest,
            rule="big-payments",
            reason="a person must approve this call",
            timeout_s=timeout_s,
            on_timeout=on_timeout,
        )
    )


def _open_for(store: ApprovalStore, ledger: Ledger, digest: str = DIGEST):
    return ledger.transact(lambda txn: store.open_for(txn, "bot", "pay", digest))


def test_a_new_request_is_pending_with_what_the_call_asked(store, ledger, hashed_clock):
    request_id = _open(store, ledger)

    request = store.get(request_id)

    assert request_id.startswith("apr_")
    assert (request.status, request.agent, request.tool, request.args) == ("pending", "bot", "pay", {"amount": 700})
    assert (request.rule, request.call, request.args_digest) == ("big-payments", "ref-1", DIGEST)
    assert request.expires_ns - request.created_ns == 60 * 10**9
    assert [r.id for r in store.list("pending")] == [request_id]


def test_the_same_call_finds_its_open_request_and_another_call_does_not(store, ledger):
    request_id = _open(store, ledger)

    assert _open_for(store, ledger).id == request_id
    assert _open_for(store, ledger, "e" * 64) is None


def test_an_approval_is_good_for_one_call(store, ledger):
    request_id = _open(store, ledger)

    answered = store.decide(request_id, approve=True, by="ana", comment="fine")
    found = _open_for(store, ledger)
    ledger.transact(lambda txn: store.consume(txn, found.id))

    assert (answered.status, answered.decided_by, answered.comment) == ("approved", "ana", "fine")
    assert found.id == request_id and found.status == "approved"
    assert _open_for(store, ledger) is None
    assert store.get(request_id).consumed


def test_a_request_is_answered_once(store, ledger):
    request_id = _open(store, ledger)
    store.decide(request_id, approve=False, by="ana")

    with pytest.raises(HashedError, match="already denied"):
        store.decide(request_id, approve=True, by="bob")
    assert store.get(request_id).decided_by == "ana"


def test_an_unanswered_request_expires_after_its_timeout(store, ledger, hashed_clock):
    request_id = _open(store, ledger, timeout_s=60)

    hashed_clock.advance(61)

    assert store.get(request_id).status == "expired"
    assert store.list("expired")[0].id == request_id and store.list("pending") == []
    assert store.to_relay() == []  # nothing left for a person to answer
    with pytest.raises(HashedError, match="already expired"):
        store.decide(request_id, approve=True, by="ana")


def test_an_answer_not_used_within_the_requests_timeout_no_longer_counts(store, ledger, hashed_clock):
    request_id = _open(store, ledger, timeout_s=60)
    store.decide(request_id, approve=True, by="ana")

    hashed_clock.advance(30)
    assert _open_for(store, ledger).id == request_id
    hashed_clock.advance(31)
    assert _open_for(store, ledger) is None


def test_an_unknown_id_names_the_command_that_lists_them(store):
    with pytest.raises(HashedError, match="hashed approvals list"):
        store.get("apr_nope")


def test_relaying_hands_on_pending_requests_and_keeps_a_backends_signed_answer(store, ledger, hashed_clock):
    first, second = _open(store, ledger), _open(store, ledger, digest="e" * 64)

    assert {r.id for r in store.to_relay()} == {first, second}
    assert [r.id for r in store.to_relay(only=second)] == [second]

    store.relayed(first, "remote-1")
    store.answered(first, status="approved", decided_ns=hashed_clock(), by="ana", comment=None, answer="{}", sig="ab")

    request = store.get(first)
    assert (request.remote_id, request.status, request.answer, request.answer_sig) == (
        "remote-1",
        "approved",
        "{}",
        "ab",
    )
    assert [r.id for r in store.to_relay()] == [second]


def test_a_backends_answer_never_overrides_a_local_one(store, ledger, hashed_clock):
    request_id = _open(store, ledger)
    store.decide(request_id, approve=False, by="ana")

    store.answered(
        request_id, status="approved", decided_ns=hashed_clock(), by="bob", comment=None, answer="{}", sig=""
    )

    assert (store.get(request_id).status, store.get(request_id).decided_by) == ("denied", "ana")
