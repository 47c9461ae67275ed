"""`hashed verify` on a ledger altered or damaged outside Hashed: it names the first bad record (issue #14, item 9)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from hashed.ledger import read_ledger
from hashed.testing import make_hashed

HASHED = [sys.executable, "-m", "hashed.cli"]


def _ledger(home, calls: int):
    with make_hashed(home, durability="immediate") as hashed:
        send = hashed.guard("send")(lambda to: "sent")
        for i in range(calls):
            send(f"acct-{i}")
    return home / "ledger.db"


def _verify(path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HASHED, "verify", *args, str(path)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("change", "seq", "says"),
    [
        ("UPDATE records SET body = CAST('not json' AS BLOB) WHERE seq = 3", 3, "its body is not JSON"),
        ("UPDATE records SET body = CAST('[1, 2]' AS BLOB) WHERE seq = 3", 3, "its body is not a JSON object"),
        ("UPDATE records SET kind = 'outcome' WHERE seq = 3", 3, "its kind column disagrees with the signed record"),
        ("UPDATE records SET ts = ts + 1 WHERE seq = 4", 4, "its ts column disagrees with the signed record"),
        ("UPDATE records SET key = 'ab' || substr(key, 3) WHERE seq = 2", 2, "its key column disagrees"),
    ],
    ids=["body-not-json", "body-not-an-object", "kind-column", "ts-column", "key-column"],
)
def test_verify_names_the_record_whose_row_was_altered(tmp_path, change, seq, says):
    path = _ledger(tmp_path / "home", 5)
    with sqlite3.connect(path) as conn:
        conn.execute(change)
    conn.close()
    plain, as_json = _verify(path), _verify(path, "--json")
    for result in (plain, as_json):
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    assert f"✗ record {seq}: {says}" in " ".join(plain.stdout.split())
    assert f'"seq": {seq}' in as_json.stdout and says in as_json.stdout


def test_verify_names_the_first_record_a_damaged_file_cannot_give(tmp_path):
    path = _ledger(tmp_path / "home", 300)
    records = list(read_ledger(path))
    target = records[400]  # a leaf page of the records table in the middle of the file
    image = bytearray(path.read_bytes())
    page = image.index(bytes.fromhex(target["hash"])) // 4096 * 4096
    image[page : page + 8] = b"\xff" * 8  # the page's header: SQLite can no longer read that page
    path.write_bytes(bytes(image))
    result = _verify(path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    said = " ".join(result.stdout.split())
    bad_seq = int(said.split("✗ record ")[1].split(":")[0])
    assert 1 < bad_seq <= target["seq"]
    assert f"the ledger file cannot be read after record {bad_seq - 1}" in said and "it is damaged" in said
