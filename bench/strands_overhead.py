"""What HashedHookProvider adds to each tool call of a real Strands agent loop, sync and async. Not a test.

    uv run python bench/strands_overhead.py [--calls 40] [--rounds 25]

One process, one agent shape, a scripted `Model` (no network). Bare, do-nothing-hook and guarded agents run in
alternating rounds, with `agent(...)` and with `invoke_async`. A stopwatch measures each tool call from the first
`BeforeToolCallEvent` callback to the last `AfterToolCallEvent` one: every hook, the tool (an async `@tool`) and,
when present, the guard. The do-nothing row is Strands' own charge for one more
async `BeforeToolCallEvent` callback at the same order as Hashed's; Hashed's own share is measured against it.
Durable variants (the default) journal a decision and an outcome record per call in the process before the call
goes on, and a writer thread commits them; immediate variants commit each to SQLite in the caller (as safe
against a killed process, slower); the background variant only queues them (may lose the last milliseconds on a
crash). The machine is shared and noisy: compare rows of one run, and runs by their medians.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from strands import Agent, tool
from strands.hooks import AfterToolCallEvent, BeforeToolCallEvent
from strands.models.model import Model

from hashed import Hashed, Identity, ToolCall
from hashed.adapters import started
from hashed_strands import HashedHookProvider
from hashed_strands._translate import arguments, identity, read_outcome

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


@tool
async def lookup(key: str, n: int) -> str:
    """Look a key up (async: a sync tool's hop to a worker thread would add jitter larger than the guard)."""
    return key


class ScriptedModel(Model):
    """Asks for `lookup` once per turn, `calls` times, then answers."""

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.asked = 0

    def update_config(self, **model_config: Any) -> None:
        pass

    def get_config(self) -> Any:
        return {}

    async def structured_output(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError
        yield

    async def stream(self, messages: Any, tool_specs: Any = None, system_prompt: Any = None, **kwargs: Any) -> Any:
        yield {"messageStart": {"role": "assistant"}}
        if self.asked < self.calls:
            use = {"name": "lookup", "toolUseId": f"c{self.asked}"}
            yield {"contentBlockStart": {"start": {"toolUse": use}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps({"key": "k", "n": self.asked})}}}}
            self.asked += 1
            stop = "tool_use"
        else:
            self.asked = 0  # ready for the next run
            yield {"contentBlockStart": {"start": {}}}
            yield {"contentBlockDelta": {"delta": {"text": "done"}}}
            stop = "end_turn"
        yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": stop}}


class Stopwatch:
    """First BeforeToolCallEvent callback to last AfterToolCallEvent callback, per tool use."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self._started: dict[str, int] = {}

    def register_hooks(self, registry: Any, **kwargs: Any) -> None:
        registry.add_callback(BeforeToolCallEvent, self.start, order=-math.inf)
        registry.add_callback(AfterToolCallEvent, self.stop, order=math.inf)

    def start(self, event: BeforeToolCallEvent) -> None:
        self._started[event.tool_use["toolUseId"]] = time.perf_counter_ns()

    def stop(self, event: AfterToolCallEvent) -> None:
        self.samples.append(time.perf_counter_ns() - self._started.pop(event.tool_use["toolUseId"]))


class DoNothing:
    """An async BeforeToolCallEvent callback at Hashed's order that does nothing: Strands' own charge for one."""

    def register_hooks(self, registry: Any, **kwargs: Any) -> None:
        registry.add_callback(BeforeToolCallEvent, self.nothing, order=math.inf)

    async def nothing(self, event: BeforeToolCallEvent) -> None:
        return None


NOTHING = "do-nothing hook (Strands' own cost)"
VARIANTS = {  # label: (policy, durability)
    "durable, allow rule": ("allow rule", "durable"),
    "durable, rule + limit + windows": ("allow rule + limit + rate window", "durable"),
    "immediate, allow rule": ("allow rule", "immediate"),
    "immediate, rule + limit + windows": ("allow rule + limit + rate window", "immediate"),
    "background, allow rule (compare)": ("allow rule", "background"),
}
ASYNC = ("durable, allow rule", "immediate, allow rule")  # also with `invoke_async`
SAFE = ("durable, allow rule", "immediate, allow rule")  # the modes that lose nothing when the process is killed
WIDTHS = (7, 7, 9, 9)


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1000


def run_agents(instances: dict[str, Hashed], calls: int, rounds: int) -> dict[str, Stopwatch]:
    """Run every variant's agent `rounds` times (after 3 warm-up runs), alternating; their stopwatches."""
    runs = ["bare", NOTHING, *instances, "async bare", f"async {NOTHING}", *(f"async {label}" for label in ASYNC)]
    watches = {run: Stopwatch() for run in runs}
    agents = {}
    for run in runs:
        label = run.removeprefix("async ")
        hooks: list[Any] = [watches[run]]
        if label == NOTHING:
            hooks.append(DoNothing())
        elif label != "bare":
            hooks.append(HashedHookProvider(instances[label]))
        agents[run] = Agent(model=ScriptedModel(calls), tools=[lookup], hooks=hooks, callback_handler=None)
    loop = asyncio.new_event_loop()
    for round_ in range(rounds + 3):  # alternate variants so that drift hits all alike
        for run, agent in agents.items():
            agent.messages.clear()
            gc.collect()
            if run.startswith("async "):
                loop.run_until_complete(agent.invoke_async("go"))
            else:
                agent("go")
        if round_ == 2:
            for watch in watches.values():
                watch.samples.clear()
    loop.close()
    return watches


def adapter_alone(n: int) -> float:
    """µs per call of the adapter's own work around the core: binding the tool's input twice (when deciding and,
    to compare, when it runs), the ids, and reading the result."""
    use = {"toolUseId": "c1", "name": "lookup", "input": {"key": "k", "n": 1}}
    result = {"toolUseId": "c1", "status": "success", "content": [{"text": "k"}]}

    class Named:
        name, session_id = "bot", "s1"

    start = time.perf_counter_ns()
    for _ in range(n):
        arguments(lookup, use) == arguments(lookup, use)  # noqa: B015 - the comparison is the work measured
        identity(Named())
        read_outcome(result, None, 0)
    return (time.perf_counter_ns() - start) / n / 1000


def core_alone(hashed: Hashed, n: int) -> list[int]:
    """check + record back to back, no Strands work in between (how hashed-core measures itself)."""
    samples = []
    for i in range(n):
        call = ToolCall("lookup", {"key": "k", "n": i}, framework="strands", call_id=f"c{i}")
        start = started()
        decision = hashed.check(call)
        hashed.record(decision, read_outcome({"status": "success", "content": [{"text": "k"}]}, None, start))
        samples.append(time.perf_counter_ns() - start)
    return samples


def direct_calls(hashed: Hashed, n: int) -> dict[str, list[int]]:
    """`agent.tool.lookup(...)` without and with the guard (each call runs its own event loop in a thread)."""
    bare = Agent(model=ScriptedModel(0), tools=[lookup], callback_handler=None, record_direct_tool_call=False)
    guarded = Agent(
        model=ScriptedModel(0),
        tools=[lookup],
        hooks=[HashedHookProvider(hashed)],
        callback_handler=None,
        record_direct_tool_call=False,
    )
    samples: dict[str, list[int]] = {"bare": [], "guarded": []}
    for i in range(n):
        for name, agent in (("bare", bare), ("guarded", guarded)):
            start = time.perf_counter_ns()
            agent.tool.lookup(key="k", n=i)
            samples[name].append(time.perf_counter_ns() - start)
    return samples


def row(label: str, cells: list[float]) -> str:
    return f"{label:48} " + " ".join(f"{c:{w}.1f}" for c, w in zip(cells, WIDTHS, strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="tool calls per agent run")
    parser.add_argument("--rounds", type=int, default=25, help="agent runs per variant (after 3 warm-up runs)")
    args = parser.parse_args()
    n = args.rounds * args.calls

    with tempfile.TemporaryDirectory() as tmp:
        instances = {
            label: Hashed(Path(tmp) / str(i), identity=Identity.generate(), policy=POLICIES[policy], durability=mode)
            for i, (label, (policy, mode)) in enumerate(VARIANTS.items())
        }
        watches = run_agents(instances, args.calls, args.rounds)
        direct = direct_calls(instances["durable, allow rule"], min(n, 300))
        tight = {label: core_alone(instances[label], n) for label in SAFE}
        verified = [hashed.verify() for hashed in instances.values()]
        for hashed in instances.values():
            hashed.close()

    glue = adapter_alone(n * 10)
    bare, abare = watches["bare"].samples, watches["async bare"].samples
    print(f"Added latency per tool call of a Strands agent loop, {n} tool calls per variant (µs)")
    print("added = guarded - bare (same process, alternating runs)\n")
    head = f"{'variant':48} {'p50':>7} {'p99':>7} {'added p50':>9} {'added p99':>9}"
    print(head)
    print("-" * len(head))
    print(row("bare agent loop (the tool call only)", [pct(bare, 0.5), pct(bare, 0.99)]))
    for label in (NOTHING, *instances):
        s = watches[label].samples
        cells = [pct(s, 0.5), pct(s, 0.99), pct(s, 0.5) - pct(bare, 0.5), pct(s, 0.99) - pct(bare, 0.99)]
        print(row(label if label == NOTHING else f"HashedHookProvider, {label}", cells))
    print(row("async agent loop (invoke_async), bare", [pct(abare, 0.5), pct(abare, 0.99)]))
    for label in (NOTHING, *ASYNC):
        s = watches[f"async {label}"].samples
        cells = [pct(s, 0.5), pct(s, 0.99), pct(s, 0.5) - pct(abare, 0.5), pct(s, 0.99) - pct(abare, 0.99)]
        print(row(f"async {label if label == NOTHING else 'HashedHookProvider, ' + label}", cells))
    b, g = direct["bare"], direct["guarded"]
    print(row("direct agent.tool.lookup(), bare", [pct(b, 0.5), pct(b, 0.99)]))
    cells = [pct(g, 0.5), pct(g, 0.99), pct(g, 0.5) - pct(b, 0.5), pct(g, 0.99) - pct(b, 0.99)]
    print(row("direct agent.tool.lookup(), guarded (durable)", cells))
    print(row("adapter code alone (bind twice, ids, outcome)", [glue]))
    for label, samples in tight.items():
        print(row(f"core check+record, tight loop, {label}", [pct(samples, 0.5), pct(samples, 0.99)]))
    print(f"\nledgers verified: {all(r.ok for r in verified)} ({sum(r.count for r in verified)} records)")
    for run, base, nothing in (
        ("durable, allow rule", bare, NOTHING),
        ("async durable, allow rule", abare, f"async {NOTHING}"),
    ):
        added = pct(watches[run].samples, 0.5) - pct(base, 0.5)
        charge = pct(watches[nothing].samples, 0.5) - pct(base, 0.5)
        verdict = "met" if added <= 100 else "MISSED"
        print(
            f"target, added p50 <= 100 µs ({run}): {verdict} ({added:.1f} µs, {100 * added / pct(base, 0.5):.0f} % "
            f"of the bare loop's p50; Strands' own charge for a hook {charge:.1f} µs, Hashed's share "
            f"{added - charge:.1f} µs)"
        )


if __name__ == "__main__":
    main()
