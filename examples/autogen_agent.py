"""An AutoGen agent guarded by Hashed, fully offline: AutoGen's own replay model client stands in for the LLM.

Run it (no API key, no network; needs `pip install hashed-autogen autogen-ext` for the replay client):

    python examples/autogen_agent.py [project-folder]     # default: a throwaway project in a temporary folder

With a folder made by `hashed init`, its agent key signs the records (the policy below still applies).

The model asks for three tool calls. Policy allows the small transfer, refuses the delete and the transfer over the
limit; the model sees each refusal as the tool's error result and the run goes on. Every decision and outcome is
signed into the ledger, which is verified at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, ModelInfo, RequestUsage
from autogen_core.tools import FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient

from hashed import Hashed, Identity
from hashed_autogen import guard_tools

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


async def transfer_money(to: str, amount: float) -> str:
    print(f"tool ran: transfer_money(to={to!r}, amount={amount!r})")
    return f"sent {amount:g} to {to}"


async def delete_file(path: str) -> str:
    print(f"tool ran: delete_file(path={path!r})")
    return f"deleted {path}"


def asks(*calls: tuple[str, str, dict[str, object]]) -> CreateResult:
    """One model turn asking for tool calls (id, name, arguments)."""
    content = [FunctionCall(id=i, name=name, arguments=json.dumps(args)) for i, name, args in calls]
    usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
    return CreateResult(finish_reason="function_calls", content=content, usage=usage, cached=False)


# Replays the turns below; with a real model, pass e.g. `OpenAIChatCompletionClient(model="gpt-4.1")` instead.
model = ReplayChatCompletionClient(
    [
        asks(("call-1", "transfer_money", {"to": "acct-9", "amount": 120})),
        asks(
            ("call-2", "delete_file", {"path": "/var/db"}),
            ("call-3", "transfer_money", {"to": "acct-9", "amount": 5000}),
        ),
        "I paid 120 to acct-9; deleting /var/db and paying 5000 were refused by policy.",
    ],
    model_info=ModelInfo(
        vision=False, function_calling=True, json_output=False, family="unknown", structured_output=False
    ),
)


async def main(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    # In your project, `hashed init` writes .hashed/ (policy, key) and `guard_tools(tools)` needs no `hashed`.
    identity = None if (folder / "agent.key").exists() else Identity.generate()  # None: the project's own key
    with Hashed(folder, identity=identity, policy=POLICY) as hashed:
        tools = [FunctionTool(transfer_money, "Send money."), FunctionTool(delete_file, "Delete a file.")]
        agent = AssistantAgent(
            "billing_bot",
            model_client=model,
            tools=guard_tools(tools, hashed, agent="billing_bot"),
            max_tool_iterations=3,
        )
        result = await agent.run(task="Pay acct-9, clean up, pay the rest")
        for message in result.messages:
            if isinstance(message, ToolCallExecutionEvent):
                for done in message.content:
                    print(f"model saw: {done.content}")
        print(f"agent: {result.messages[-1].to_text()}")
        report = hashed.verify()
        for record in hashed.ledger.records():
            body = record.body
            print(f"  #{record.seq} {record.kind:8} {body['tool']:15} {body.get('effect') or body.get('status')}")
        print(f"ledger verified: {report.count} records" if report.ok else f"ledger BROKEN: {report.error}")
        return 0 if report.ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(asyncio.run(main(Path(sys.argv[1]))))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(asyncio.run(main(Path(tmp) / ".hashed")))
