"""A CrewAI crew guarded by Hashed, fully offline: a scripted `BaseLLM` stands in for the model.

Run it (no API key, no network):

    python examples/crewai_agent.py [project-folder]     # default: a throwaway project in a temporary folder

With a folder made by `hashed init`, its agent key signs the records (the policy below still applies).

The model asks for three tool calls (the last two in one message, which CrewAI runs in parallel). Policy allows the
small transfer and refuses the delete and the transfer over the limit; the model sees each refusal as the tool's
result and the crew goes on. Every decision and outcome is signed into the ledger, which is verified at the end.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# CrewAI sends telemetry by default (and, offline, waits ≈ 10 s at exit for it): off for this example.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import tool

import hashed_crewai
from hashed import Hashed, Identity

POLICY = """
version: 1
default: deny
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 1000}
  - id: never-delete
    tools: ["delete_*"]
    effect: deny
    reason: Agents never delete data.
"""


@tool("transfer_money")
def transfer_money(to: str, amount: float) -> str:
    """Send money to an account."""
    print(f"tool ran: transfer_money(to={to!r}, amount={amount!r})")
    return f"sent {amount:g} to {to}"


@tool("delete_file")
def delete_file(path: str) -> str:
    """Delete a file."""
    print(f"tool ran: delete_file(path={path!r})")
    return f"deleted {path}"


def call(call_id: str, name: str, **args: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


class ScriptedLLM(BaseLLM):
    """Replays the answers below; with a real model, pass e.g. `llm="openai/gpt-4.1"` to the Agent instead."""

    answers: list[Any] = [
        [call("call-1", "transfer_money", to="acct-9", amount=120)],
        [call("call-2", "delete_file", path="/var/db"), call("call-3", "transfer_money", to="acct-9", amount=5000)],
        "I paid 120 to acct-9; deleting /var/db and paying 5000 were refused by policy.",
    ]
    seen: list[Any] = []

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen = list(messages)
        return self.answers.pop(0)

    def supports_function_calling(self) -> bool:
        return True


def main(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    # In your project, `hashed init` writes .hashed/ (policy, key) and `hashed_crewai.instrument()` needs no argument.
    identity = None if (folder / "agent.key").exists() else Identity.generate()  # None: the project's own key
    with Hashed(folder, identity=identity, policy=POLICY) as hashed:
        hashed_crewai.instrument(hashed)  # the one added line
        llm = ScriptedLLM(model="scripted")
        clerk = Agent(role="billing-bot", goal="Pay the bills", backstory="A careful clerk", llm=llm,
                      tools=[transfer_money, delete_file])  # fmt: skip
        task = Task(description="Pay acct-9, clean up, pay the rest", expected_output="A summary", agent=clerk)
        result = Crew(agents=[clerk], tasks=[task]).kickoff()
        for message in llm.seen:
            if message.get("role") == "tool":
                print(f"model saw: {message['content']}")
        print(f"agent: {result.raw}")
        report = hashed.verify()
        for record in hashed.ledger.records():
            body = record.body
            print(f"  #{record.seq} {record.kind:8} {body['tool']:15} {body.get('effect') or body.get('status')}")
        print(f"ledger verified: {report.count} records" if report.ok else f"ledger BROKEN: {report.error}")
        return 0 if report.ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(tmp) / ".hashed"))
