"""`hashed.ledger._outbox.Outbox`: what the shipper sends, and what it keeps of the backend's answers.

The shipper asks only these questions of the ledger database; these tests ask them as it does.
"""

from __future__ import annotations

import pytest

from hashed.identity import Identity
from hashed.ledger import Ledger
from hashed.ledger._checkpoints import sign_ledger_checkpoint
from hashed.ledger._outbox import Outbox
from hashed.ledger._queries import refusals
from hashed.testing import FIXED_SEED


@pytest.fixture
def ledger(tmp_path, hashed_clock):
    instance = Ledger(tmp_path / "ledger.db", Identity.from_seed(FIXED_SEED), clock=hashed_clock)
    yield instance
    instance.close()


@pytest.fixture
def outbox(ledger: Ledger):
    box = Outbox(ledger.db, ledger.path)
    yield box
    box.close()


def _append(ledger: Ledger, count: int) -> None:
    for n in range(count):
        ledger.transact(lambda txn, n=n: txn.append("outcome", "bot", {"call": f"c-{n}", "tool": "t"}))
    ledger.flush()  # signed: only signed records are shipped


def test_the_next_batch_is_the_signed_records_past_the_watermark_in_order(ledger, outbox):
    _append(ledger, 5)

    mark, records, more = outbox.next_batch(3)

    assert (mark, more) == (0, True)
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert [(r["hash"], r["sig"]) for r in records] == [(x.hash, x.sig) for x in ledger.records(1, 3)]
    assert outbox.unshipped() == 5


def test_an_acknowledgement_moves_the_watermark_and_keeps_the_refusals(ledger, outbox, hashed_clock):
    _append(ledger, 5)

    outbox.acknowledge(3, [(2, "bad_signature", "not ours")], hashed_clock())

    mark, records, more = outbox.next_batch(10)
    assert (mark, [r["seq"] for r in records], more) == (3, [4, 5], False)
    assert outbox.unshipped() == 2
    assert [(seq, code, reason) for seq, code, reason, _ in refusals(ledger.path)] == [(2, "bad_signature", "not ours")]


def test_a_checkpoint_is_sent_once_its_records_are_shipped_and_then_never_again(ledger, outbox, hashed_clock):
    _append(ledger, 4)
    note = sign_ledger_checkpoint(ledger.db, ledger.identity)
    assert note is not None

    assert outbox.checkpoint_to_send() is None  # its records are not all at the backend yet
    outbox.acknowledge(4, [], hashed_clock())
    assert outbox.checkpoint_to_send() == (4, note)
    outbox.checkpoint_sent(4)
    assert outbox.checkpoint_to_send() is None
