"""A Strands agent guarded by Hashed, fully offline: a scripted `Model` stands in for the LLM.

Run it (no API key, no network):

    python examples/strands_agent.py [project-folder]     # default: a throwaway project in a temporary folder

With a folder made by `hashed init`, its agent key signs the records (the policy below still applies).

The model asks for three tool calls. Policy allows the small transfer and refuses the delete (the model sees the
refusal as the tool's result and the run goes on). The large transfer needs a person: the agent stops with a Strands
interrupt, the app asks (here it is scripted to say yes as "alice"), and the agent resumes with the answer, which the
ledger keeps as a signed approval. Every decision and outcome is signed into the ledger, verified at the end.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from strands import Agent, tool
from strands.models.model import Model

from hashed import Hashed, Identity
from hashed_strands import HashedHookProvider, respond

POLICY = """
version: 1
default: deny
rules:
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 1000}
    approval: {when: {amount: {gt: 500}}, timeout: 15m}
  - id: never-delete
    tools: ["delete_*"]
    effect: deny
    reason: Agents never delete data.
"""


@tool
def transfer_money(to: str, amount: float) -> str:
    """Send money to an account."""
    print(f"tool ran: transfer_money(to={to!r}, amount={amount!r})")
    return f"sent {amount:g} to {to}"


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    print(f"tool ran: delete_file(path={path!r})")
    return f"deleted {path}"


class ScriptedModel(Model):
    """Streams the turns below as a model would; with a real model, pass e.g. `BedrockModel()` instead."""

    def __init__(self, *turns: tuple[str, dict[str, Any]] | str) -> None:
        self.turns = list(turns)

    def update_config(self, **model_config: Any) -> None:
        pass

    def get_config(self) -> Any:
        return {}

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError
        yield

    async def stream(self, messages: Any, tool_specs: Any = None, system_prompt: Any = None, **kwargs: Any) -> Any:
        turn = self.turns.pop(0)
        yield {"messageStart": {"role": "assistant"}}
        if isinstance(turn, str):
            yield {"contentBlockStart": {"start": {}}}
            yield {"contentBlockDelta": {"delta": {"text": turn}}}
        else:
            name, args = turn
            yield {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": f"call-{len(self.turns)}"}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(args)}}}}
        yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "end_turn" if isinstance(turn, str) else "tool_use"}}


def main(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    # In your project, `hashed init` writes .hashed/ (policy, key) and `HashedHookProvider()` needs no argument.
    identity = None if (folder / "agent.key").exists() else Identity.generate()  # None: the project's own key
    with Hashed(folder, identity=identity, policy=POLICY) as hashed:
        model = ScriptedModel(
            ("transfer_money", {"to": "acct-9", "amount": 120}),
            ("delete_file", {"path": "/var/db"}),
            ("transfer_money", {"to": "acct-7", "amount": 800}),
            "I paid 120 to acct-9 and, once alice approved, 800 to acct-7; deleting /var/db was refused.",
        )
        agent = Agent(
            model=model,
            tools=[transfer_money, delete_file],
            hooks=[HashedHookProvider(hashed, approvals="interrupt")],
            name="billing-bot",
            callback_handler=None,
        )
        result = agent("Pay acct-9, clean up, pay acct-7")
        while result.stop_reason == "interrupt":  # a call waits for a person: ask in the app, then resume
            answers = []
            for asked in result.interrupts:
                print(f"asked alice: {asked.reason['tool']} {asked.reason['args']}")
                answers.append(respond(asked, approve=True, by="alice", comment="invoice 42"))
            result = agent(answers)
        for message in agent.messages:
            for block in message["content"]:
                if "toolResult" in block and block["toolResult"]["status"] == "error":
                    print(f"model saw: {block['toolResult']['content'][0]['text']}")
        print(f"agent: {str(result).strip()}")
        report = hashed.verify()
        for record in hashed.ledger.records():
            body = record.body
            status = body.get("effect") or body.get("verdict") or body.get("status")
            print(f"  #{record.seq} {record.kind:8} {body.get('tool', ''):15} {status}")
        print(f"ledger verified: {report.count} records" if report.ok else f"ledger BROKEN: {report.error}")
        return 0 if report.ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(tmp) / ".hashed"))
