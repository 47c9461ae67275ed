"""`hashed.ledger._usage`: the running-total counters behind rolling windows.

What a window asks is "how many calls, and how much, in this scope since T?"; the answer must be what counting
the rows one by one would give, for any T, in any scope.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hashed.ledger._db import Database
from hashed.ledger._usage import add_usage, usage_since


def _database(tmp_path) -> Database:
    return Database(tmp_path / "ledger.db")


def test_usage_since_an_unused_scope_is_nothing(tmp_path):
    db = _database(tmp_path)
    with db.write() as conn:
        assert usage_since(conn, "bot\x1fpay\x1fcalls", 0) == (0, 0.0, None)
    db.close()


def test_usage_since_counts_and_sums_only_rows_at_or_after_since(tmp_path):
    db = _database(tmp_path)
    with db.write() as conn:
        add_usage(conn, [("s", 10, 1.0), ("s", 20, 2.0), ("s", 30, 3.0)])
        assert usage_since(conn, "s", 0)[:2] == (3, 6.0)
        assert usage_since(conn, "s", 20)[:2] == (2, 5.0)
        assert usage_since(conn, "s", 30)[:2] == (1, 3.0)
        assert usage_since(conn, "s", 31) == (0, 0.0, (3, 6.0, 30))  # nothing in the window; the last row still
    db.close()


def test_scopes_are_counted_apart(tmp_path):
    db = _database(tmp_path)
    with db.write() as conn:
        add_usage(conn, [("a", 10, 5.0), ("b", 11, 7.0), ("a", 12, 1.0)])
    with db.write() as conn:
        add_usage(conn, [("b", 13, 1.0)])  # a later transaction goes on from the scope's running totals
        assert usage_since(conn, "a", 0)[:2] == (2, 6.0)
        assert usage_since(conn, "b", 0)[:2] == (2, 8.0)
    db.close()


def test_a_row_stamped_before_the_scopes_last_is_counted_at_the_last_rows_time(tmp_path):
    """Another process's clock may be behind: its call still counts in every window the last call counts in."""
    db = _database(tmp_path)
    with db.write() as conn:
        add_usage(conn, [("s", 100, 1.0)])
    with db.write() as conn:
        add_usage(conn, [("s", 50, 1.0)])
        assert usage_since(conn, "s", 60) == (2, 2.0, (2, 2.0, 100))
    db.close()


def test_known_last_rows_continue_the_running_totals(tmp_path):
    """`known` is a scope's last row already read in the transaction: counting goes on from it."""
    db = _database(tmp_path)
    with db.write() as conn:
        add_usage(conn, [("s", 10, 4.0)])
        last = usage_since(conn, "s", 0)[2]
        add_usage(conn, [("s", 20, 1.0)], known={"s": last})
        assert usage_since(conn, "s", 0) == (2, 5.0, (2, 5.0, 20))
    db.close()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 50), st.integers(0, 1000)), min_size=1, max_size=30
    ),
    since=st.integers(0, 55),
    groups=st.integers(1, 4),
)
def test_usage_since_matches_counting_the_rows_one_by_one(tmp_path_factory, rows, since, groups):
    rows = sorted(rows, key=lambda row: row[1])  # in time order: what one clock gives
    db = _database(tmp_path_factory.mktemp("usage"))
    step = -(-len(rows) // groups)
    for start in range(0, len(rows), step):  # some in one transaction, some in the next
        with db.write() as conn:
            add_usage(conn, [(scope, ts, float(amount)) for scope, ts, amount in rows[start : start + step]])
    with db.write() as conn:
        for scope in ("a", "b"):
            mine = [amount for s, ts, amount in rows if s == scope and ts >= since]
            assert usage_since(conn, scope, since)[:2] == (len(mine), float(sum(mine)))
    db.close()
