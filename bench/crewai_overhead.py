"""What hashed-crewai adds to each tool call of a real CrewAI crew, on the ReAct and the native path. Not a test.

    uv run python bench/crewai_overhead.py [--calls 30] [--rounds 15]
    uv run python bench/crewai_overhead.py --seams [--rounds 9]    # one call at CrewAI's seams, no agent loop

One process, a scripted `BaseLLM` (no network). Per path, the variants run in alternating rounds: bare (no tool
hook, CrewAI's own tool-run methods), a do-nothing before hook (CrewAI's own charge for one tool hook, which includes
the HookDispatchedEvent it emits for every dispatch: what `instrument()` registers for an allowed call), the same
with CrewAI's inert telemetry listener for that event taken off the bus (what CrewAI charges for the hook once
`instrument()` has done so, see hashed_crewai/_telemetry.py), do-nothing before and after hooks (for comparison:
CrewAI dispatches and emits twice), and guarded (`hashed_crewai.instrument(hashed)`) in each durability mode. The
variants without Hashed run CrewAI as it ships (that listener on the bus). One A/B row runs the guarded durable
variant with that listener left on the bus (as before #18 took it off). One what-if row runs it with CrewAI's hook
telemetry emission (`crewai.hooks.dispatch._emit_telemetry`) replaced by a no-op, to show what a CrewAI that did
not emit would leave: not a supported setting, only here. A stopwatch around CrewAI's per-call function
(`execute_tool_and_check_finality` on the ReAct path, `AgentExecutor._execute_single_native_tool_call` on the native
one) times each tool call as the agent loop sees it: the hooks, the guard and the tool. The headline row (durable,
allow rule) is guarded with an allow rule; "limit + windows" also bounds an argument and counts two rolling windows.
Durable mode (the default) journals each record before the call goes on; immediate commits each to SQLite in the
caller; background only queues (may lose the last milliseconds on a crash).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")  # else each process waits ≈ 10 s at exit
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

import crewai.agents.agent_executor as executor_module
import crewai.hooks.dispatch  # noqa: F401 - the module, for the what-if row (`crewai.hooks.dispatch` is a function)
from crewai import Agent, Crew, Task
from crewai.agents.agent_executor import AgentExecutor
from crewai.events.event_bus import crewai_event_bus
from crewai.hooks import (
    register_after_tool_call_hook,
    register_before_tool_call_hook,
    unregister_after_tool_call_hook,
    unregister_before_tool_call_hook,
)
from crewai.llms.base_llm import BaseLLM
from crewai.tools import tool
from crewai.tools.base_tool import BaseTool, Tool
from crewai.tools.structured_tool import CrewStructuredTool

import hashed_crewai
from hashed import Hashed, Identity, ToolCall
from hashed_crewai import _hooks, _telemetry

# A scripted model has no native token count: CrewAI estimates it, and logs a warning at every model turn
logging.getLogger("crewai.llms.base_llm").setLevel(logging.ERROR)

POLICIES = {
    "allow rule": "version: 1\ndefault: deny\nrules: [{id: lookups, tools: [lookup], effect: allow}]\n",
    "limit + windows": """
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
GUARDED = {  # label: (policy, durability)
    "durable, allow rule": ("allow rule", "durable"),
    "durable, limit + windows": ("limit + windows", "durable"),
    "immediate, allow rule": ("allow rule", "immediate"),
    "background, allow rule (compare)": ("allow rule", "background"),
}
BARE, NOTHING = "bare loop (the tool call only)", "do-nothing before hook (CrewAI's own charge)"
QUIET = "do-nothing before hook, CrewAI's listener off"  # what CrewAI charges under instrument()
BOTH = "do-nothing before + after hooks"
KEPT = "durable, allow rule, listener kept (A/B)"
WHAT_IF = "durable, allow rule, if CrewAI did not emit"
STOCK = (BARE, NOTHING, QUIET, BOTH)  # no Hashed
METHODS = [(BaseTool, "run"), (BaseTool, "arun"), (Tool, "run"), (Tool, "arun"), (CrewStructuredTool, "invoke")]
METHODS += [(CrewStructuredTool, "ainvoke"), (CrewStructuredTool, "_parse_args"), (BaseTool, "_validate_kwargs")]


@tool("lookup")
def lookup(key: str, n: int) -> str:
    """Look a key up."""
    return key


class ScriptedLLM(BaseLLM):
    answers: list[Any] = []
    native: bool = False

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        return self.answers.pop(0)

    def supports_function_calling(self) -> bool:
        return self.native


def llm(path: str, calls: int) -> ScriptedLLM:
    args = [{"key": f"k{i}", "n": i} for i in range(calls)]  # never the same twice: ReAct refuses repeats
    if path == "native":
        answers: list[Any] = [
            [{"id": f"c{i}", "type": "function", "function": {"name": "lookup", "arguments": json.dumps(a)}}]
            for i, a in enumerate(args)
        ]
        answers.append("done")
    else:
        answers = [f"Thought: look.\nAction: lookup\nAction Input: {json.dumps(a)}" for a in args]
        answers.append("Thought: I now know the final answer\nFinal Answer: done")
    return ScriptedLLM(model="scripted", answers=answers, native=path == "native")


class Stopwatch:
    """Times CrewAI's per-tool-call function into the samples of the variant running now."""

    def __init__(self) -> None:
        self.samples: dict[str, list[int]] = {}
        self.cpu: dict[str, list[int]] = {}  # CPU time of the whole process over the same call (all its threads)
        self.rounds: dict[tuple[str, int], list[tuple[int, int]]] = {}  # (variant, round): (wall, cpu) per call
        self.current = ""
        self.round = 0
        react, native = executor_module.execute_tool_and_check_finality, AgentExecutor._execute_single_native_tool_call

        def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                cpu, start = time.process_time_ns(), time.perf_counter_ns()
                try:
                    return fn(*args, **kwargs)
                finally:
                    wall, cpu = time.perf_counter_ns() - start, time.process_time_ns() - cpu
                    self.samples.setdefault(self.current, []).append(wall)
                    self.cpu.setdefault(self.current, []).append(cpu)
                    self.rounds.setdefault((self.current, self.round), []).append((wall, cpu))

            return call

        executor_module.execute_tool_and_check_finality = timed(react)
        AgentExecutor._execute_single_native_tool_call = timed(native)  # type: ignore[method-assign]


def nothing_before(ctx: Any) -> None:
    return None


def nothing_after(ctx: Any) -> None:
    return None


class Switch:
    """Puts CrewAI in the state of one variant: its own methods and no hooks, do-nothing hooks, or guarded."""

    def __init__(self, hashed: Hashed) -> None:
        self.bare = {(cls, name): cls.__dict__[name] for cls, name in METHODS}
        hashed_crewai.instrument(hashed)  # wraps CrewAI's methods and registers the hooks
        self.guarded = {(cls, name): cls.__dict__[name] for cls, name in METHODS}
        self.dispatch = sys.modules["crewai.hooks.dispatch"]
        self.emit = self.dispatch._emit_telemetry
        self.set("bare", None)

    def set(self, variant: str, hashed: Hashed | None) -> None:
        for (cls, name), method in (self.bare if hashed is None else self.guarded).items():
            setattr(cls, name, method)
        hashed_crewai.uninstrument()
        for before, after in ((_hooks.before_tool_call, _hooks.after_tool_call), (nothing_before, nothing_after)):
            unregister_before_tool_call_hook(before)
            unregister_after_tool_call_hook(after)
        if variant in (NOTHING, QUIET, BOTH):
            register_before_tool_call_hook(nothing_before)
        if variant == BOTH:
            register_after_tool_call_hook(nothing_after)
        self.dispatch._emit_telemetry = (lambda *args: None) if variant == WHAT_IF else self.emit
        if hashed is not None:
            hashed_crewai.instrument(hashed)  # takes CrewAI's inert hook-telemetry listener off its bus
        if variant == QUIET:
            _telemetry.detach()
        elif hashed is None or variant == KEPT:
            _telemetry.restore()  # CrewAI as it ships


def paired(watch: Stopwatch, variant: str, bare: str, column: int) -> float:
    """Added p50: the median over rounds of (the variant's p50 - the bare loop's p50 in the same round).

    Rounds run minutes apart on a shared machine whose load drifts; each round's variants run back to back, so
    comparing within a round cancels the drift that pooling every round's samples would mix in.
    """
    diffs = []
    for (label, round_), calls in watch.rounds.items():
        base = watch.rounds.get((bare, round_))
        if label == variant and base:
            diffs.append(pct([c[column] for c in calls], 0.5) - pct([c[column] for c in base], 0.5))
    return sorted(diffs)[len(diffs) // 2] if diffs else float("nan")


def settle(instances: list[Hashed]) -> None:
    """Let the last variant's background work finish before the next is timed, so it is charged to neither.

    CrewAI's event bus hands each event's listeners to its thread pool, and Hashed's journal writer signs and commits
    behind the caller: in a tight loop both fall behind, and their backlog would compete with the next variant.
    """
    crewai_event_bus.flush()
    for hashed in instances:
        hashed.flush()
    gc.collect()


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1000


def core_alone(hashed: Hashed, n: int) -> list[int]:
    """check + record back to back, no CrewAI work in between (how hashed-core measures itself)."""
    samples = []
    for i in range(n):
        call = ToolCall("lookup", {"key": f"k{i}", "n": i}, agent="clerk", framework="crewai")
        start = time.perf_counter_ns()
        decision = hashed.check(call)
        hashed.record(decision, hashed_outcome(start))
        samples.append(time.perf_counter_ns() - start)
    return samples


def hashed_outcome(start: int) -> Any:
    from hashed.adapters import outcome

    return outcome(start, result="k")


def seams(hashed: Hashed, n: int, rounds: int) -> None:
    """One tool call at CrewAI's own seams, no LLM and no agent loop: the hooks' dispatch and the tool run only.

    What CrewAI's native loop does around a tool (`ToolCallHookContext`, before hooks, `tool.run`, after hooks) and
    what its ReAct path does (the same around `CrewStructuredTool.invoke`), timed in a tight loop: far less noise
    than a whole crew, so the parts can be told apart. Medians of `rounds` rounds of `n` calls, each a p50.
    """
    from crewai.hooks import ToolCallHookContext
    from crewai.hooks.tool_hooks import run_after_tool_call_hooks, run_before_tool_call_hooks

    class Model(BaseLLM):
        def call(self, *args: Any, **kwargs: Any) -> Any:
            return "-"

    agent = Agent(role="clerk", goal="Look.", backstory="-", llm=Model(model="scripted"), tools=[lookup])
    structured = lookup.to_structured_tool()
    dispatch = sys.modules["crewai.hooks.dispatch"]

    def one(path: str, i: int) -> None:
        args = {"key": f"k{i}", "n": i}
        before = ToolCallHookContext(tool_name="lookup", tool_input=args, tool=structured, agent=agent)
        if run_before_tool_call_hooks(before):
            result: Any = "blocked"
        else:
            result = lookup.run(**args) if path == "native" else structured.invoke(args)
        after = ToolCallHookContext(
            tool_name="lookup", tool_input=args, tool=structured, agent=agent, tool_result=str(result)
        )
        run_after_tool_call_hooks(after)

    def p50(path: str, start: int) -> float:
        samples = []
        for i in range(start, start + n):
            t = time.perf_counter_ns()
            one(path, i)
            samples.append(time.perf_counter_ns() - t)
        return pct(samples, 0.5)

    switch, emit, rows, counter = Switch(hashed), dispatch._emit_telemetry, {}, itertools.count()
    for _ in range(rounds):
        for path in ("native", "react"):
            for variant in (*STOCK, "durable, allow rule", KEPT, WHAT_IF):
                switch.set(variant, None if variant in STOCK else hashed)
                settle([hashed])
                rows.setdefault(f"{path}: {variant}", []).append(p50(path, next(counter) * n))
    switch.set(BARE, None)
    dispatch._emit_telemetry = emit
    print(f"One tool call at CrewAI's seams (no agent loop), p50 µs, median of {rounds} rounds of {n} calls")
    for label, got in rows.items():
        print(f"{label:64} {sorted(got)[len(got) // 2]:8.1f}  ({min(got):.1f}-{max(got):.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="tool calls per crew run (at most 90)")
    parser.add_argument("--rounds", type=int, default=15, help="crew runs per variant (after 3 warm-up runs)")
    parser.add_argument("--seams", action="store_true", help="time one call at CrewAI's seams only (no agent loop)")
    args = parser.parse_args()
    if args.seams:
        with tempfile.TemporaryDirectory() as tmp:
            policy = POLICIES["allow rule"]
            hashed = Hashed(Path(tmp), identity=Identity.generate(), policy=policy, durability="durable")
            seams(hashed, 2000, max(3, args.rounds // 3))
            hashed.close()
        return
    with tempfile.TemporaryDirectory() as tmp:
        instances = {
            label: Hashed(Path(tmp) / str(i), identity=Identity.generate(), policy=POLICIES[policy], durability=mode)
            for i, (label, (policy, mode)) in enumerate(GUARDED.items())
        }
        instances[WHAT_IF] = instances[KEPT] = instances["durable, allow rule"]
        distinct = list({id(hashed): hashed for hashed in instances.values()}.values())
        watch, switch = Stopwatch(), Switch(instances["durable, allow rule"])
        variants = [*STOCK, *GUARDED, KEPT, WHAT_IF]
        for round_ in range(args.rounds + 3):  # alternate variants so that drift hits all alike
            for path in ("react", "native"):
                for variant in variants:
                    switch.set(variant, instances.get(variant))
                    watch.current, watch.round = f"{path}: {variant}" if round_ >= 3 else "warm-up", round_
                    model = llm(path, args.calls)
                    agent = Agent(role="clerk", goal="Look.", backstory="-", llm=model, tools=[lookup], max_iter=99)
                    team = Crew(agents=[agent], tasks=[Task(description="Look.", expected_output="Done.", agent=agent)])
                    settle(distinct)
                    team.kickoff()
        switch.set(BARE, None)
        tight = core_alone(instances["durable, allow rule"], args.rounds * args.calls)
        verified = [hashed.verify() for hashed in distinct]
        for hashed in distinct:
            hashed.close()

    n = args.rounds * args.calls
    print(f"Added latency per tool call of a CrewAI crew, {n} tool calls per variant and path (µs)")
    print("added p50 = median over rounds of (variant p50 - bare p50, same round); added p99 = pooled difference\n")
    print("cpu = CPU time of the process (all threads) over the call: what other processes on a busy machine")
    print("cannot inflate; Hashed's journal writer and CrewAI's event-bus thread count, as they should\n")
    head = f"{'variant':64} {'p50':>7} {'p99':>7} {'added p50':>9} {'added p99':>9} {'cpu p50':>7} {'added':>7}"
    print(head)
    print("-" * len(head))
    for path in ("react", "native"):
        base = f"{path}: {BARE}"
        bare = watch.samples[base]
        for variant in variants:
            label = f"{path}: {variant}"
            got, cpu = watch.samples[label], pct(watch.cpu[label], 0.5)
            cells = f"{pct(got, 0.5):7.1f} {pct(got, 0.99):7.1f}"
            if variant != BARE:
                cells += f" {paired(watch, label, base, 0):9.1f} {pct(got, 0.99) - pct(bare, 0.99):9.1f}"
                cells += f" {cpu:7.1f} {paired(watch, label, base, 1):7.1f}"
            else:
                cells += f" {'':9} {'':9} {cpu:7.1f}"
            label = variant if variant in STOCK else f"instrument(), {variant}"
            print(f"{path + ': ' + label:64} {cells}")
    print(f"{'core check+record, tight loop, durable':64} {pct(tight, 0.5):7.1f} {pct(tight, 0.99):7.1f}")
    print(f"\nledgers verified: {all(r.ok for r in verified)} ({sum(r.count for r in verified)} records)")
    print(f"CrewAI's hook-telemetry listener taken off the bus by instrument(): {_telemetry._State.verified}")
    for path in ("react", "native"):
        base, bare = f"{path}: {BARE}", pct(watch.samples[f"{path}: {BARE}"], 0.5)
        shown = (NOTHING, QUIET, "durable, allow rule", KEPT, WHAT_IF)
        wall = {v: paired(watch, f"{path}: {v}", base, 0) for v in shown}
        cpu = {v: paired(watch, f"{path}: {v}", base, 1) for v in shown}
        added, charge = wall["durable, allow rule"], wall[QUIET]
        print(
            f"target, added p50 <= 100 µs ({path}, durable, allow rule): {'met' if added <= 100 else 'MISSED'} "
            f"({added:.1f} µs, {100 * added / bare:.0f} % of the bare tool call's p50; with CrewAI's listener kept "
            f"{wall[KEPT]:.1f} µs; CrewAI's own charge for a do-nothing before hook {wall[NOTHING]:.1f} µs as it "
            f"ships, {charge:.1f} µs under Hashed; Hashed's own share {added - charge:.1f} µs; "
            f"added if CrewAI did not emit {wall[WHAT_IF]:.1f} µs)"
        )
        print(
            f"  cpu ({path}): added {cpu['durable, allow rule']:.1f} µs (listener kept {cpu[KEPT]:.1f}), "
            f"CrewAI's charge {cpu[NOTHING]:.1f} µs as it ships, {cpu[QUIET]:.1f} µs under Hashed, "
            f"Hashed's share {cpu['durable, allow rule'] - cpu[QUIET]:.1f} µs, "
            f"added if CrewAI did not emit {cpu[WHAT_IF]:.1f} µs"
        )


if __name__ == "__main__":
    main()
