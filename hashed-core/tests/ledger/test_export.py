"""Reading a ledger file read-only: a reader left unfinished can be closed from any thread (the garbage collector's)."""

from __future__ import annotations

import threading

from hashed.ledger import read_ledger
from hashed.testing import make_hashed


def test_an_unfinished_reader_closes_cleanly_from_another_thread(tmp_path):
    with make_hashed(tmp_path / "home", durability="immediate") as hashed:
        send = hashed.guard("send")(lambda to: "sent")
        for i in range(3):
            send(f"acct-{i}")
    records = read_ledger(tmp_path / "home" / "ledger.db")
    assert next(records)["seq"] == 1  # `hashed verify` stops like this at the first bad record
    errors: list[BaseException] = []

    def close() -> None:
        try:
            records.close()
        except BaseException as exc:  # the assertion below shows it
            errors.append(exc)

    thread = threading.Thread(target=close)
    thread.start()
    thread.join()
    assert errors == []
