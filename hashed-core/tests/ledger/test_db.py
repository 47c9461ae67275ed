"""Opening the ledger file: agents that start together on a new project all get in (issue #14, item 8)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from hashed.ledger import read_ledger, verify_records

STARTS = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from hashed.testing import make_hashed

    root, rounds, procs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    for r in range(rounds):
        home, go = root / f"round-{r}", root / f"go-{r}"
        children = []
        for i in range(procs):
            pid = os.fork()
            if pid == 0:  # each child waits for the barrier file, then starts an agent on the new project
                code = 0
                try:
                    while not go.exists():
                        time.sleep(0.0002)
                    with make_hashed(home, durability="immediate") as hashed:
                        hashed.guard("send")(lambda to: "sent")("acct")
                except BaseException as exc:
                    (root / f"error-{r}-{i}").write_text(repr(exc))
                    code = 1
                os._exit(code)
            children.append(pid)
        go.touch()
        for pid in children:
            os.waitpid(pid, 0)
    """
)

HOLDER = textwrap.dedent(
    """
    import sqlite3, sys, time
    from pathlib import Path
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS other_tool (x)")  # the new file has a page, still in rollback mode
    conn.execute("BEGIN IMMEDIATE")  # and this process holds its write lock for a moment, as while creating it
    Path(sys.argv[2]).touch()
    while not Path(sys.argv[3]).exists():  # the agent has imported hashed and is opening the ledger now
        time.sleep(0.001)
    time.sleep(0.3)
    conn.execute("COMMIT")
    """
)

AGENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hashed.testing import make_hashed
    Path(sys.argv[2]).touch()
    with make_hashed(Path(sys.argv[1]), durability="immediate") as hashed:
        print(hashed.guard("send")(lambda to: "sent")("acct"))
    """
)


def test_agents_starting_together_on_a_project_with_no_ledger_all_start(tmp_path):
    rounds, procs = 20, 8
    subprocess.run([sys.executable, "-c", STARTS, str(tmp_path), str(rounds), str(procs)], check=True, timeout=600)
    errors = {path.name: path.read_text() for path in tmp_path.glob("error-*")}
    assert errors == {}
    for r in range(rounds):
        records = list(read_ledger(tmp_path / f"round-{r}" / "ledger.db"))
        assert len(records) == 2 * procs and verify_records(records).ok  # a decision and an outcome each


def test_an_agent_waits_for_the_process_creating_the_ledger_instead_of_failing(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    ready = tmp_path / "ready"
    opening = tmp_path / "opening"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(home / "ledger.db"), str(ready), str(opening)])
    try:
        while not ready.exists() and holder.poll() is None:
            time.sleep(0.01)
        agent = subprocess.run(
            [sys.executable, "-c", AGENT, str(home), str(opening)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        holder.wait(60)
    assert agent.returncode == 0, agent.stderr
    assert agent.stdout.strip() == "sent"
