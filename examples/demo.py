"""The README's demo: a small payments agent guarded by Hashed, offline, in a fresh folder.

Shows an allowed call, a call over its per-call limit, a call over its daily window, a call waiting for a person,
that person approving it from the CLI, and `hashed verify` checking the signed ledger. Run: ./dev demo
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from hashed import Hashed, Refusal

console = Console(highlight=False)
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


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="hashed-demo-"))
    os.environ.pop("HASHED_KEY_PASSPHRASE", None)
    console.rule("[bold]Hashed demo: a payments agent")
    hashed_cli("init", "--agent", "billing-bot", cwd=workdir)
    (workdir / ".hashed" / "policy.yaml").write_text(POLICY)
    os.chdir(workdir)

    hashed = Hashed()

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
    pending = transfer_money("acct-1", 600)
    show("transfer_money('acct-1', 600)  # over 500", pending)

    console.rule("a person answers the approval request")
    if not isinstance(pending, Refusal) or pending.decision.approval_id is None:
        raise SystemExit("demo: expected a pending approval")
    hashed_cli("approvals", "list", cwd=workdir)
    hashed_cli("approvals", "approve", pending.decision.approval_id, "-m", "invoice 2026-118", cwd=workdir)
    show("transfer_money('acct-1', 600)  # asked again", transfer_money("acct-1", 600))

    console.rule("the daily window: 1500 in all")
    show("transfer_money('acct-7', 450)  # day: 1450", transfer_money("acct-7", 450))
    show("transfer_money('acct-7', 450)  # day: 1900", transfer_money("acct-7", 450))
    hashed.close()

    console.rule("the ledger: every decision and outcome, signed and hash-chained")
    hashed_cli("verify", cwd=workdir)
    console.print(f"\n[dim]project left in {workdir} (try: cd {workdir} && hashed status)[/]")
    if os.environ.get("HASHED_DEMO_CLEANUP"):
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
