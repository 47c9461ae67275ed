"""What hashed-autogen adds to each tool call of a real AutoGen `AssistantAgent` loop. Not a test.

    uv run python bench/autogen_overhead.py [--calls 40] [--rounds 15]

One process, AutoGen's replay model client (no network). Every variant's agent runs in alternating rounds. Two
stopwatches: one is the agent's outermost workbench (each `call_tool`: the guard, when it is inside, and the tool),
the other wraps `AssistantAgent._execute_tool_call` (the whole tool call as the agent loop runs it, including
AutoGen's own `list_tools`, which rebuilds every tool's JSON schema at each call and is most of its cost). The
zero-code variant decides outside the workbench, so only the second stopwatch sees it. The do-nothing rows are
AutoGen's own charge for one more delegating tool or workbench, the hook points `guard_tools` and `HashedWorkbench`
use; Hashed's own share is measured against them. Durable variants (the default mode) append each record to a
memory-mapped journal that a writer thread commits; immediate variants commit each to SQLite in the caller.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import CreateResult, ModelInfo, RequestUsage
from autogen_core.tools import BaseTool, FunctionTool, StaticWorkbench, ToolResult, ToolSchema, Workbench
from autogen_ext.models.replay import ReplayChatCompletionClient
from pydantic import BaseModel

from hashed import Hashed, Identity, ToolCall
from hashed.adapters import outcome
from hashed_autogen import HashedWorkbench, guard_tools
from hashed_autogen._hooks import install
from hashed_autogen._plugin import Installed

POLICIES = {  # one allow rule; the second also bounds an argument and counts two rolling windows
    "allow rule": "version: 1\ndefault: deny\nrules: [{id: lookups, tools: [lookup], effect: allow}]\n",
    "allow rule + limit + rate window": """
version: 1
default: deny
rules:
  - id: lookups
    tools: [lookup]
    effect: allow
    limits: {n: {max: 100000000, window: {per: 1d, max_sum: 100000000000}}}
    rate: {per: 1h, max_calls: 100000000}
""",
}
INFO = ModelInfo(vision=False, function_calling=True, json_output=False, family="unknown", structured_output=False)


async def lookup(key: str, n: int) -> str:
    return key


TOOL = FunctionTool(lookup, description="Look a key up.")


class PassTool(BaseTool[BaseModel, Any]):
    """A delegating tool that does nothing else: AutoGen's charge for the hook point `guard_tools` uses."""

    def __init__(self, tool: BaseTool[Any, Any]) -> None:
        super().__init__(tool.args_type(), tool.return_type(), tool.name, tool.description)
        self.tool = tool

    async def run(self, args: BaseModel, cancellation_token: CancellationToken) -> Any:
        return await self.tool.run(args, cancellation_token)

    async def run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None = None
    ) -> Any:
        return await self.tool.run_json(args, cancellation_token, call_id=call_id)


class PassWorkbench(Workbench):
    """A delegating workbench; with `samples`, it times each `call_tool` (the stopwatch)."""

    def __init__(self, inner: Workbench, samples: list[int] | None = None) -> None:
        self.inner, self.samples = inner, samples

    async def list_tools(self) -> list[ToolSchema]:
        return await self.inner.list_tools()

    async def call_tool(
        self, name: str, arguments: Any = None, cancellation_token: Any = None, call_id: Any = None
    ) -> ToolResult:
        start = time.perf_counter_ns()
        try:
            return await self.inner.call_tool(name, arguments, cancellation_token, call_id)
        finally:
            if self.samples is not None:
                self.samples.append(time.perf_counter_ns() - start)

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def reset(self) -> None: ...
    async def save_state(self) -> Mapping[str, Any]:
        return {}

    async def load_state(self, state: Mapping[str, Any]) -> None: ...


class ExecStopwatch:
    """Times `AssistantAgent._execute_tool_call` (outermost, around the zero-code patch when it is there)."""

    samples: list[int] = []

    @classmethod
    def install(cls) -> None:
        inner = AssistantAgent.__dict__["_execute_tool_call"].__func__

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter_ns()
            try:
                return await inner(*args, **kwargs)
            finally:
                cls.samples.append(time.perf_counter_ns() - start)

        AssistantAgent._execute_tool_call = staticmethod(timed)  # type: ignore[method-assign]


def client(calls: int) -> ReplayChatCompletionClient:
    usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
    turns: list[CreateResult | str] = [
        CreateResult(
            finish_reason="function_calls",
            content=[FunctionCall(id=f"c{i}", name="lookup", arguments=json.dumps({"key": f"k{i}", "n": i}))],
            usage=usage,
            cached=False,
        )
        for i in range(calls)
    ]
    return ReplayChatCompletionClient([*turns, "done"], model_info=INFO)


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1000


BARE, TOOL_NOTHING, WB_NOTHING = (
    "bare agent loop",
    "do-nothing tool wrapper (AutoGen's own cost)",
    "do-nothing workbench wrapper (AutoGen's own cost)",
)
VARIANTS = {  # label: (policy, durability, how)
    "guard_tools, durable, allow rule": ("allow rule", "durable", "tools"),
    "guard_tools, durable, rule + limit + windows": ("allow rule + limit + rate window", "durable", "tools"),
    "guard_tools, immediate, allow rule": ("allow rule", "immediate", "tools"),
    "HashedWorkbench, durable, allow rule": ("allow rule", "durable", "workbench"),
    "zero-code (instrument), durable, allow rule": ("allow rule", "durable", "instrument"),
}


class RunJson:
    """`BaseTool.run_json` as the zero-code patch leaves it, and AutoGen's own (set in `main`)."""

    guarded: Any = None
    plain: Any = None


def workbench(label: str, instances: dict[str, Hashed], samples: list[int]) -> Workbench:
    if label == BARE or VARIANTS.get(label, ("", "", ""))[2] == "instrument":
        inner: Workbench = StaticWorkbench([TOOL])
    elif label == TOOL_NOTHING:
        inner = StaticWorkbench([PassTool(TOOL)])
    elif label == WB_NOTHING:
        inner = PassWorkbench(StaticWorkbench([TOOL]))
    elif VARIANTS[label][2] == "tools":
        inner = StaticWorkbench(guard_tools([TOOL], instances[label]))
    else:
        inner = HashedWorkbench(StaticWorkbench([TOOL]), instances[label])
    return PassWorkbench(inner, samples)


def run_agents(
    instances: dict[str, Hashed], calls: int, rounds: int
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    labels = [BARE, TOOL_NOTHING, WB_NOTHING, *VARIANTS]
    inner = {label: [] for label in labels}
    outer: dict[str, list[int]] = {label: [] for label in labels}
    loop = asyncio.new_event_loop()
    for round_ in range(rounds + 3):  # alternate variants so that drift hits all alike
        for label in labels:
            zero_code = VARIANTS.get(label, ("", "", ""))[2] == "instrument"
            if zero_code:  # what instrument(hashed) sets; the patch itself is installed once, under the stopwatch
                Installed.active, Installed.hashed = True, instances[label]
            # the zero-code patch's guard of BaseTool.run_json only in its own variant: the others run AutoGen's own
            BaseTool.run_json = RunJson.guarded if zero_code else RunJson.plain  # type: ignore[method-assign]
            agent = AssistantAgent(
                "bench",
                model_client=client(calls),
                workbench=workbench(label, instances, inner[label]),
                max_tool_iterations=calls + 1,
            )
            ExecStopwatch.samples = outer[label]
            gc.collect()
            loop.run_until_complete(agent.run(task="go"))
            if zero_code:
                Installed.active, Installed.hashed = False, None
        if round_ == 2:
            for sampled in (*inner.values(), *outer.values()):
                sampled.clear()
    loop.close()
    return inner, outer


def core_alone(hashed: Hashed, n: int) -> list[int]:
    samples = []
    for i in range(n):
        call = ToolCall("lookup", {"key": f"k{i}", "n": i}, framework="autogen", call_id=f"c{i}")
        start = time.perf_counter_ns()
        decision = hashed.check(call)
        hashed.record(decision, outcome(start, result="k"))
        samples.append(time.perf_counter_ns() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="tool calls per agent run")
    parser.add_argument("--rounds", type=int, default=15, help="agent runs per variant (after 3 warm-up runs)")
    args = parser.parse_args()
    install()  # the zero-code patch, inert until a variant turns it on; the stopwatch goes around it
    ExecStopwatch.install()
    RunJson.guarded = BaseTool.run_json
    RunJson.plain = RunJson.guarded.__hashed_original__
    with tempfile.TemporaryDirectory() as tmp:
        instances = {
            label: Hashed(Path(tmp) / str(i), identity=Identity.generate(), policy=POLICIES[policy], durability=mode)
            for i, (label, (policy, mode, _)) in enumerate(VARIANTS.items())
        }
        inner, outer = run_agents(instances, args.calls, args.rounds)
        n = args.calls * args.rounds
        tight = {
            mode: core_alone(instances[label], n)
            for label, mode in (
                ("guard_tools, durable, allow rule", "durable"),
                ("guard_tools, immediate, allow rule", "immediate"),
            )
        }
        verified = [hashed.verify() for hashed in instances.values()]
        for hashed in instances.values():
            hashed.close()

    print(f"Added latency per tool call of an AutoGen AssistantAgent loop, {n} tool calls per variant (µs)")
    print("workbench = each call_tool of the agent's outermost workbench; tool call = all of _execute_tool_call\n")
    head = f"{'variant':48} {'wb p50':>7} {'wb p99':>7} {'added':>7} {'call p50':>8} {'call p99':>8} {'added':>7}"
    print(head)
    print("-" * len(head))
    wb0, call0 = pct(inner[BARE], 0.5), pct(outer[BARE], 0.5)
    for label in (BARE, TOOL_NOTHING, WB_NOTHING, *VARIANTS):
        zero_code = VARIANTS.get(label, ("", "", ""))[2] == "instrument"
        wb = (
            "    n/a     n/a     n/a"
            if zero_code
            else f"{pct(inner[label], 0.5):7.1f} {pct(inner[label], 0.99):7.1f} {pct(inner[label], 0.5) - wb0:7.1f}"
        )
        call = f"{pct(outer[label], 0.5):8.1f} {pct(outer[label], 0.99):8.1f} {pct(outer[label], 0.5) - call0:7.1f}"
        print(f"{label:48} {wb} {call}")
    for mode, samples in tight.items():
        print(f"{'core check+record, tight loop, ' + mode:48} {pct(samples, 0.5):7.1f} {pct(samples, 0.99):7.1f}")
    print(f"\nledgers verified: {all(r.ok for r in verified)} ({sum(r.count for r in verified)} records)")
    headline = "guard_tools, durable, allow rule"
    added = pct(inner[headline], 0.5) - wb0
    charge = pct(inner[TOOL_NOTHING], 0.5) - wb0
    verdict = "met" if added <= 100 else "MISSED"
    print(
        f"target, added p50 <= 100 µs ({headline}): {verdict} ({added:.1f} µs, {100 * added / wb0:.0f} % of the bare "
        f"call_tool's p50, {100 * added / call0:.0f} % of the bare tool call's; AutoGen's own charge for a do-nothing "
        f"tool wrapper {charge:.1f} µs, Hashed's own share {added - charge:.1f} µs)"
    )
    zero = "zero-code (instrument), durable, allow rule"
    zadded = pct(outer[zero], 0.5) - call0
    wcharge = pct(outer[WB_NOTHING], 0.5) - call0
    print(
        f"zero-code, added p50 over the whole tool call: {zadded:.1f} µs ({100 * zadded / call0:.0f} % of the bare "
        f"tool call's p50; AutoGen's own charge for a do-nothing workbench wrapper {wcharge:.1f} µs)"
    )


if __name__ == "__main__":
    main()
