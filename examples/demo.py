"""The README's demo: a payments agent guarded by Hashed, reporting to a local backend (SQLite), in a fresh folder.

Shows an allowed call, a call over its per-call limit, a forbidden tool, a call waiting for a person who
approves it at the backend, a call over the daily window, then `hashed verify` on the agent's signed ledger
and on the backend's export of it. Run: ./dev demo
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape

from hashed import Hashed, Refusal
from hashed._docs import docs_url
from hashed_backend.testing import LocalBackend, Organisation

console = Console(highlight=False, soft_wrap=True)  # a printed command never wraps
POLICY = """\
version: 1
default: deny
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 1000, window: {per: 1d, max_sum: 1500}}
    approval: {when: {amount: {gt: 500}}, timeout: 15m}
  - id: never-delete
    tools: ["delete_*"]
    effect: deny
    reason: Agents never delete data.
"""


def hashed_cli(*args: str, cwd: Path) -> None:
    """Run the real `hashed` command, as a person would."""
    console.print(f"[dim]$ hashed {' '.join(args)}[/]")
    subprocess.run([sys.executable, "-m", "hashed.cli", *args], cwd=cwd, check=False)


def show(label: str, result: object) -> None:
    colour = "red" if isinstance(result, Refusal) else "green"
    console.print(f"  {label:<44} → [{colour}]{result}[/]")


def approve_soon(org: Organisation) -> None:
    """A person in finance answers the request at the backend (as they would from the dashboard)."""
    for _ in range(200):
        pending = org.call("GET", "/v1/approvals", status="pending")["items"]
        if pending:
            time.sleep(0.5)
            org.call("POST", f"/v1/approvals/{pending[0]['id']}/approve", {"comment": "invoice 2026-118"})
            console.print(f"  [yellow]{org.email} approved {pending[0]['tool']} {pending[0]['args']} at the backend[/]")
            return
        time.sleep(0.05)


def main() -> None:
    os.environ.pop("HASHED_KEY_PASSPHRASE", None)
    workdir = Path(tempfile.mkdtemp(prefix="hashed-demo-"))
    home = Path.cwd()
    console.rule("[bold]Hashed demo: a payments agent and a local backend")
    try:
        run_demo(workdir)
    finally:
        os.chdir(home)
        shutil.rmtree(workdir, ignore_errors=True)
    closing_hints()


def run_demo(workdir: Path) -> None:
    console.print("starting a local backend (python -m hashed_backend serve, SQLite in a temporary folder) …")
    started = time.monotonic()
    backend = LocalBackend(workdir / "backend").start()
    try:
        console.print(f"backend ready at {backend.url} after {time.monotonic() - started:.1f} s")
        org = backend.bootstrap(email="finance@example.com")
        org.put_policy(POLICY)
        console.print("the policy is stored at the backend; the agent pulls it from there")
        hashed_cli("init", "--agent", "billing-bot", cwd=workdir)
        os.chdir(workdir)
        agent_key = org.create_key("agent", "billing-bot")
        # approval_wait: a call that needs a person waits up to 20 s for the answer (0 would refuse it at once)
        hashed = Hashed(
            backend_url=backend.url, api_key=agent_key, ship_interval=0.2, approval_wait=20.0, approval_poll=0.1
        )
        try:
            console.print(f"policy in force: {hashed.policy_source}\n")
            run_agent(hashed, org)
        finally:
            hashed.close()  # ships what is left
        console.rule("the ledger: every decision and outcome, signed and hash-chained")
        hashed_cli("verify", cwd=workdir)
        check_backend(org, workdir)
    finally:
        console.print("[dim]stopping the local backend[/]")
        backend.stop()


def closing_hints() -> None:
    """What to try next, as commands that work where they are printed (a test runs them)."""
    hashed = shlex.quote(str(Path(sys.executable).with_name("hashed")))  # this environment's `hashed` command
    console.rule("try it on your own agent")
    console.print("the demo's temporary folder is removed; in a folder of your own:")
    console.print(f"  $ {escape(hashed)} init --agent my-bot")
    console.print(f"""  $ {escape(hashed)} policy test --call 'transfer_money {{"to": "acct-9", "amount": 700}}'""")
    console.print(f"then guard a function or a framework: {docs_url('quickstart')}")


def run_agent(hashed: Hashed, org: Organisation) -> None:
    @hashed.guard("transfer_money")
    def transfer_money(to: str, amount: float) -> str:
        return f"sent {amount} to {to}"

    @hashed.guard("delete_customer")
    def delete_customer(customer_id: str) -> str:
        return "deleted"

    console.rule("guarded calls")
    show("transfer_money('acct-9', 400)", transfer_money("acct-9", 400))
    show("transfer_money('acct-9', 5000)  # over 1000", transfer_money("acct-9", 5000))
    show("delete_customer('c-42')", delete_customer("c-42"))

    console.rule("over 500: a person must approve")
    person = threading.Thread(target=approve_soon, args=(org,))
    person.start()
    show("transfer_money('acct-1', 600)  # waits", transfer_money("acct-1", 600))
    person.join()

    console.rule("the daily window: 1500 in all")
    show("transfer_money('acct-7', 450)  # day: 1450", transfer_money("acct-7", 450))
    show("transfer_money('acct-7', 450)  # day: 1900", transfer_money("acct-7", 450))


def check_backend(org: Organisation, workdir: Path) -> None:
    console.rule("the backend holds the same chain, verified record by record")
    agent = next(a for a in org.call("GET", "/v1/agents") if a["name"] == "billing-bot")
    chain = org.call("GET", f"/v1/agents/{agent['id']}/chain")
    console.print(
        f"  backend: {chain['records']} records, verified up to seq {chain['verified_seq']}, "
        f"{chain['quarantined']} quarantined"
    )
    export = workdir / "backend-export.jsonl"
    response = httpx.get(
        f"{org.url}/v1/logs/export",
        params={"agent": agent["id"]},
        timeout=30,
        headers={"Authorization": f"Bearer {org.admin_key}"},
    )
    export.write_bytes(response.content)
    hashed_cli("verify", str(export), cwd=workdir)


if __name__ == "__main__":
    main()
