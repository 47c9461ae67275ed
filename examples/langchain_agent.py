"""A LangChain agent guarded by Hashed, fully offline: LangChain's own fake chat model stands in for the LLM.

Run it (no API key, no network):

    python examples/langchain_agent.py [project-folder]     # default: a throwaway project in a temporary folder

With a folder made by `hashed init`, its agent key signs the records (the policy below still applies).

The model asks for three tool calls. Policy allows the small transfer, refuses the delete and the transfer over the
limit; the model sees each refusal as the tool's result and the run goes on. Every decision and outcome is signed
into the ledger, which is verified at the end.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

from hashed import Hashed, Identity
from hashed_langchain import HashedMiddleware

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


class ScriptedModel(FakeMessagesListChatModel):
    """Replays the messages below; with a real model, pass e.g. `init_chat_model("openai:gpt-4.1")` instead."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


model = ScriptedModel(
    responses=[
        AIMessage("", tool_calls=[call("transfer_money", "call-1", to="acct-9", amount=120)]),
        AIMessage(
            "",
            tool_calls=[
                call("delete_file", "call-2", path="/var/db"),
                call("transfer_money", "call-3", to="acct-9", amount=5000),
            ],
        ),
        AIMessage("I paid 120 to acct-9; deleting /var/db and paying 5000 were refused by policy."),
    ]
)


def main(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    # In your project, `hashed init` writes .hashed/ (policy, key) and `HashedMiddleware()` needs no argument.
    identity = None if (folder / "agent.key").exists() else Identity.generate()  # None: the project's own key
    with Hashed(folder, identity=identity, policy=POLICY) as hashed:
        agent = create_agent(
            model, [transfer_money, delete_file], middleware=[HashedMiddleware(hashed)], name="billing-bot"
        )
        result = agent.invoke(
            {"messages": [("user", "Pay acct-9, clean up, pay the rest")]}, {"configurable": {"thread_id": "demo-1"}}
        )
        for message in result["messages"]:
            if isinstance(message, ToolMessage):
                print(f"model saw: {message.content}")
        print(f"agent: {result['messages'][-1].content}")
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
