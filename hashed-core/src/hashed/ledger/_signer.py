"""Sealing: signing the records a crashed process (or one that could not store its signatures) left unsigned.

Every live record is signed by the writer thread (`_writer.py`). Records a crashed process left unsigned are
found from the `signed_through` watermark (everything at or below it is signed): at open, and every few seconds by
the writer of any live process of the same key. Ed25519 signatures
are deterministic, so two processes sealing the same record write the same bytes. Only a row whose MAC holds
(`_mac.py`) is sealed: one that someone else added stays unsigned, is logged once, and `hashed verify` fails on it.
"""

from __future__ import annotations

import logging

from hashed.identity import Identity
from hashed.ledger._db import Database, get_meta, set_meta
from hashed.ledger._mac import Macs
from hashed.ledger._sign_service import sign_many

__all__ = ["seal_unsigned"]

_log = logging.getLogger("hashed.ledger")
_UPDATE_SIG = "INSERT OR IGNORE INTO signatures (sig, seq) VALUES (?, ?)"  # the first signature stays
_UNSIGNED = "FROM records r LEFT JOIN signatures s ON s.seq = r.seq WHERE r.seq > ? AND s.seq IS NULL"
_PAGE = 5000  # unsigned rows read at a time


def seal_unsigned(db: Database, identity: Identity, macs: Macs, *, older_than_ns: int | None = None) -> int:
    """Sign this key's unsigned records above the `signed_through` watermark, then advance it.

    A row is signed only when its MAC holds under `macs` (the agent wrote it); any other unsigned row is refused:
    logged once, and the watermark stays below it. `older_than_ns` skips records newer than that (a live process
    is about to sign them itself). Returns how many records were signed.
    """
    with db.lock:
        mark = get_meta(db.conn, "signed_through")
    cursor, signed, first_left = mark, 0, None
    while True:
        with db.lock:
            rows = db.conn.execute(
                f"SELECT r.seq, r.hash, r.key, r.ts, r.mac {_UNSIGNED} ORDER BY r.seq LIMIT {_PAGE}", (cursor,)
            ).fetchall()
        mine: list[tuple[int, bytes]] = []
        for seq, digest, key, ts, row_mac in rows:
            if older_than_ns is not None and ts >= older_than_ns:
                first_left = seq if first_left is None else first_left
            elif key == identity.public_key and macs.row_ok(bytes(digest), row_mac):
                mine.append((seq, bytes(digest)))
            else:
                first_left = seq if first_left is None else first_left
                if key == identity.public_key and seq not in db.refused:
                    db.refused.add(seq)
                    _log.error(
                        "hashed: ledger record %d is unsigned and this agent did not write it (its MAC does not "
                        "hold): not signing it; `hashed verify` names it",
                        seq,
                    )
        if mine:
            signatures = sign_many(identity, [digest for _, digest in mine])
            with db.write() as conn:
                conn.executemany(_UPDATE_SIG, list(zip(signatures, (seq for seq, _ in mine), strict=True)))
            signed += len(mine)
        if len(rows) < _PAGE:
            break
        cursor = rows[-1][0]
    with db.write() as conn:
        if first_left is None:
            low = conn.execute(f"SELECT min(r.seq) {_UNSIGNED}", (cursor,)).fetchone()[0]
        else:
            low = first_left
        high = conn.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
        new_mark = high if low is None else low - 1
        if new_mark > get_meta(conn, "signed_through"):
            set_meta(conn, "signed_through", new_mark)
    return signed
